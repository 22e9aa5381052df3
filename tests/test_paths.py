import pytest

from helpers import paths
from helpers.errors import InputError


def test_gtzan_audio_dir_prefers_the_explicit_folder_then_the_environment(tmp_path, monkeypatch):
    explicit, from_env = tmp_path / "a", tmp_path / "b"
    explicit.mkdir()
    from_env.mkdir()
    monkeypatch.setenv("MUSIC_STUDY_GTZAN_AUDIO", str(from_env))
    assert paths.gtzan_audio_dir(explicit) == explicit.resolve()
    assert paths.gtzan_audio_dir() == from_env.resolve()
    monkeypatch.delenv("MUSIC_STUDY_GTZAN_AUDIO")
    assert paths.gtzan_audio_dir() is None


def test_missing_gtzan_audio_dir_is_a_one_line_error(tmp_path):
    with pytest.raises(InputError, match="GTZAN audio folder does not exist"):
        paths.gtzan_audio_dir(tmp_path / "nowhere")


def test_data_dir_can_be_moved(tmp_path, monkeypatch):
    monkeypatch.setenv("MUSIC_STUDY_DATA_DIR", str(tmp_path))
    assert paths.data_dir() == tmp_path.resolve()
    monkeypatch.delenv("MUSIC_STUDY_DATA_DIR")
    assert paths.data_dir() == paths.project_root() / "data"
