"""The labeler on another feature set: musicnn windows stored, predicted and retrained on."""

from __future__ import annotations

import pytest
import soundfile as sf

from helpers.audio import decode
from helpers.constants import SAMPLE_RATE
from helpers.errors import InputError
from helpers.labeling import session as session_module
from helpers.labeling.retrain import FEATURE_SET_RECIPE
from helpers.labeling.session import LabelingSession
from helpers.labeling.widget import Labeler
from helpers.store import LabelStore

#: (song, start s): two electronic cuts to label; two other parts of those songs to predict,
#: and an orchestral cut (Wesnoth) that must not become electronic.
CUTS = {"train_a": ("openmsx_be_sharp_render.ogg", 20.0),
        "train_b": ("singularity_coherence.ogg", 40.0),
        "unseen": ("openmsx_be_sharp_render.ogg", 100.0),
        "unseen_b": ("singularity_coherence.ogg", 150.0),
        "orchestral": ("wesnoth_heroes_rite.ogg", 60.0)}
UNSEEN = ("unseen", "unseen_b", "orchestral")
CUT_SECONDS = 20.0
WINDOW_SECONDS = 10.0


@pytest.fixture(scope="module")
def cuts(root, tmp_path_factory, gtzan_audio_dir):
    folder = tmp_path_factory.mktemp("electronic")
    paths = {}
    for name, (song, start) in CUTS.items():
        samples = decode.load_audio(root / "data" / "music" / song, offset=start,
                                    duration=CUT_SECONDS)
        paths[name] = folder / f"{name}.wav"
        sf.write(paths[name], samples, SAMPLE_RATE)
    return paths


def _new_genre_run(cuts, tmp_path, features):
    """Label the two training cuts electronic, retrain, predict the unseen cuts."""
    store = LabelStore(tmp_path / f"{features}.sqlite")
    session = LabelingSession([cuts["train_a"], cuts["train_b"]], store, features=features,
                              window_seconds=WINDOW_SECONDS, background=False, workers=1)
    for song_id in list(session.songs):
        session.label("electronic", song_id=song_id)
    result = session.retrain()
    unseen = LabelingSession([cuts[name] for name in UNSEEN], store, model=session.model,
                             features=features, window_seconds=WINDOW_SECONDS, background=False,
                             workers=1)
    top = {name: unseen.top_genres(store.song_id(cuts[name]), k=1)[0] for name in UNSEEN}
    print(f"{features}: " + "; ".join(f"{name} predicted {genre} ({p:.2f})"
                                      for name, (genre, p) in top.items())
          + f"; held out {result.split} test, n={result.after['n']}: before "
          f"{result.before['accuracy']:.2f}, after {result.after['accuracy']:.2f}")
    return store, session, result, top


@pytest.fixture(scope="module")
def musicnn_run(cuts, tmp_path_factory):
    return _new_genre_run(cuts, tmp_path_factory.mktemp("musicnn"), "musicnn")


def test_musicnn_session_learns_a_new_genre(musicnn_run):
    store, session, result, top = musicnn_run
    stored = store.windows(feature_set="musicnn")
    labelled = stored[stored["song_id"].isin(session.songs)]
    assert len(set(stored["song_id"])) == 2 + len(UNSEEN)
    assert sum(c.startswith("musicnn_msd_") for c in stored.columns) == 200 and len(labelled) >= 4
    assert store.windows(feature_set="gtzan").empty  # only the chosen set is extracted
    assert "electronic" in result.new_genres and result.n_store == len(labelled)
    assert top["unseen"][0] == top["unseen_b"][0] == "electronic"
    assert top["orchestral"][0] != "electronic"


def test_musicnn_songs_are_not_extracted_again(musicnn_run, cuts, monkeypatch):
    store, *_ = musicnn_run
    def refuse(*args, **kwargs):
        raise AssertionError("extracted again")

    monkeypatch.setattr(session_module, "prepare_song", refuse)
    again = Labeler([cuts["train_a"], cuts["train_b"]], store, features="musicnn", audio=False,
                    window_seconds=WINDOW_SECONDS, background=False, workers=1)
    assert len(again.songs) == 2 and again.feature_set == "musicnn"
    assert again.fit_info.name == FEATURE_SET_RECIPE and "200 columns" in again.model_name()
    # the accuracy line names the clips it is measured on
    assert "test clips of the GTZAN audio at hand, musicnn features" in again.model_line.value


def test_gtzan_session_on_the_same_cuts(cuts, tmp_path):
    # measured, not asserted: the 58 columns need not separate a genre learnt from two cuts
    _, _, result, top = _new_genre_run(cuts, tmp_path, "gtzan")
    assert "electronic" in result.new_genres


def test_unknown_feature_set_lists_the_choices(cuts, tmp_path):
    with pytest.raises(InputError, match="musicnn") as error:
        LabelingSession([cuts["train_a"]], tmp_path / "s.sqlite", features="mfcc",
                        background=False, workers=1)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "s.sqlite").exists()
