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


def test_shipped_data_never_moves_with_the_data_folder(tmp_path, monkeypatch):
    from helpers import data

    monkeypatch.setenv("MUSIC_STUDY_DATA_DIR", str(tmp_path))
    assert paths.shipped_data_dir() == paths.project_root() / "data"
    assert paths.shipped_music_dir() == paths.project_root() / "data" / "music"
    assert data.gtzan_table_path().is_relative_to(paths.shipped_data_dir())
    assert len(data.load_gtzan_table()) == 1000
    assert sum(len(v) for v in data.load_split("fault-filtered").values()) == 930
    assert len(data.load_artist_index()) == 1000
    assert len(data.load_public_domain_lyrics()) > 0
    assert list(tmp_path.iterdir()) == []  # reading shipped data wrote nothing there


def test_what_the_user_makes_follows_the_data_folder(tmp_path, monkeypatch):
    from helpers import store
    from helpers.audio import ingest
    from helpers.features import batch
    from helpers.lyrics import fetch as lyrics_fetch
    from helpers.web import app as web

    for name in ("MUSIC_STUDY_LABEL_STORE", "MUSIC_STUDY_FEATURE_CACHE", "MUSIC_STUDY_LYRICS_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MUSIC_STUDY_DATA_DIR", str(tmp_path))
    made = [store.default_store_path(), batch.default_cache_dir(), lyrics_fetch.default_cache_path(),
            ingest.downloads_dir(), web.uploads_dir(), paths.default_model_path()]
    assert all(path.is_relative_to(tmp_path.resolve()) for path in made), made


def test_a_missing_shipped_file_names_git_as_the_remedy(tmp_path, monkeypatch):
    from helpers.data import _checked
    from helpers.errors import DataIntegrityError

    with pytest.raises(DataIntegrityError, match="git checkout -- data/"):
        _checked(tmp_path / "features_30_sec.csv", None)


def test_atomic_write_replaces_only_a_complete_file(tmp_path):
    target = tmp_path / "sub" / "model.bin"
    with paths.atomic_write(target) as temp:
        assert temp.endswith(".part") and not target.exists()
        with open(temp, "wb") as out:
            out.write(b"first")
    assert target.read_bytes() == b"first"
    with pytest.raises(RuntimeError), paths.atomic_write(target) as temp:
        with open(temp, "wb") as out:
            out.write(b"half")
        raise RuntimeError("writer failed")
    assert target.read_bytes() == b"first"  # the old file stays, the half-written one is gone
    assert [p.name for p in target.parent.iterdir()] == ["model.bin"]


def test_file_sha256_is_the_sha256_of_the_bytes_and_stays_public_in_the_store(tmp_path):
    import hashlib

    from helpers import store

    data = bytes(range(256)) * 5000  # more than one read block
    (tmp_path / "song.bin").write_bytes(data)
    assert paths.file_sha256(tmp_path / "song.bin") == hashlib.sha256(data).hexdigest()
    assert store.file_sha256 is paths.file_sha256
