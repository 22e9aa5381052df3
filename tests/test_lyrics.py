"""Lyrics analysis (helpers.lyrics.analysis) and its figures (helpers.lyrics.plots).

Genre-level checks run on the Moura et al. (2020) sample in ../shared/data/lyrics (already
lemmatised and stop-word-free, one line per song).
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from conftest import require_shared

from helpers.errors import InputError
from helpers.lyrics import analysis as lyrics
from helpers.lyrics import plots as lyrics_plots


def test_tokens_keep_accents_and_drop_stop_words_fillers_and_archaic_pronouns():
    text = "Oh, the CAFÉ is open — ¡niño, don’t cry! Thy heart, la la la, is mine\nRock'n'roll"
    assert lyrics.tokenize(text) == ["café", "open", "niño", "cry", "heart", "mine", "rock'n'roll"]
    assert "the" in lyrics.tokenize(text, stop=())
    assert lyrics.tokenize(None) == []


def test_analysis_runs_without_nltk_at_all(monkeypatch):
    # nltk ships no data and nltk.download needs the network: block the import outright
    monkeypatch.setitem(sys.modules, "nltk", None)
    assert lyrics.word_counts(["Sing a song of sixpence", "a pocket full of rye"])["song"] == 1
    assert lyrics.sentiment_summary("I love this happy song\nI hate the cold rain")["n_lines"] == 2


def test_term_frequency_counts_per_group():
    texts = ["river river home", "river sea", "mountain mountain mountain river"]
    table = lyrics.term_frequency(texts, ["a", "a", "b"], n=None)
    a = table[table["group"] == "a"].set_index("term")
    assert a.loc["river", "count"] == 3 and a.loc["river", "songs"] == 2
    assert a.loc["river", "rank"] == 1 and a["tf"].sum() == pytest.approx(1.0)
    b = table[table["group"] == "b"].set_index("term")
    assert b.loc["mountain", "count"] == 3 and b.loc["mountain", "tf"] == pytest.approx(0.75)
    with pytest.raises(InputError, match="groups"):
        lyrics.term_frequency(texts, ["a"])


def test_tfidf_per_song_ranks_the_words_only_that_song_uses_first():
    texts = ["love heart river", "love heart mountain", "love heart desert desert"]
    table = lyrics.tfidf_terms(texts, n=1)
    assert table["term"].tolist() == ["river", "mountain", "desert"]
    assert table["group"].tolist() == ["0", "1", "2"]


def test_line_sentiment_scores_each_line_and_the_arc_follows_the_song():
    song = "\n".join(["I am sad and lonely", "the pain and grief will kill me",
                      "", "but now I love the sunshine", "what a wonderful happy day"])
    scored = lyrics.line_sentiment(song)
    assert len(scored) == 4 and scored["line_no"].tolist() == [0, 1, 2, 3]
    assert (scored["compound"].iloc[:2] < 0).all() and (scored["compound"].iloc[2:] > 0).all()
    summary = lyrics.sentiment_summary(song)
    assert summary["share_positive"] == 0.5 and summary["share_negative"] == 0.5
    assert summary["arc_change"] > 1.0
    arc = lyrics.sentiment_arc(song, bins=10)
    assert arc.shape == (10,) and not np.isnan(arc).any() and arc[0] < 0 < arc[-1]


def test_whole_text_vader_saturates_where_line_means_do_not():
    song = "\n".join(["the garden is nice and the day is fine"] * 40)
    summary = lyrics.sentiment_summary(song)
    assert summary["whole_text"] > 0.99
    assert summary["mean"] < 0.6


def test_empty_song_gives_nan_summary_and_arc():
    assert lyrics.sentiment_summary("")["n_lines"] == 0
    assert np.isnan(lyrics.sentiment_arc("", bins=4)).all()


def test_group_sentiment_interval_brackets_the_mean():
    scores = lyrics.score_songs(pd.Series(["I love you", "happy happy joy", "so sad", "terrible pain"]))
    table = lyrics.group_sentiment(scores, ["up", "up", "down", "down"], n_boot=200)
    assert table.loc["up", "mean"] > 0 > table.loc["down", "mean"]
    for group in ("up", "down"):
        assert table.loc[group, "ci_low"] <= table.loc[group, "mean"] <= table.loc[group, "ci_high"]


def test_word_cloud_file_and_grid_are_not_blank(tmp_path):
    counts = lyrics.word_counts(["river river home sea mountain valley river home café niño"])
    cloud = lyrics_plots.make_wordcloud(counts, width=300, height=150)
    path = lyrics_plots.save_wordcloud(cloud, tmp_path / "cloud.png")
    assert lyrics_plots.ink_fraction(path) > 0.05
    fig = lyrics_plots.wordcloud_grid({"a": dict(counts), "b": {"sea": 3, "sky": 1}},
                                      path=tmp_path / "grid.png", width=300, height=150)
    assert lyrics_plots.ink_fraction(tmp_path / "grid.png") > 0.05
    assert len([ax for ax in fig.axes if ax.images]) == 2
    with pytest.raises(InputError, match="no words"):
        lyrics_plots.make_wordcloud({})


def test_top_term_bars_have_one_panel_per_group():
    table = lyrics.term_frequency(["river river home", "sea sky sky"], ["a", "b"], n=5)
    fig = lyrics_plots.plot_top_terms(table, n=5)
    panels = [ax for ax in fig.axes if ax.patches]
    assert [ax.get_title() for ax in panels] == ["a", "b"]
    assert len(panels[0].patches) == 2


def test_eras_label_decades_and_wider_spans():
    assert lyrics.era([1967, 1970, None, "x"]).tolist() == ["1960s", "1970s", "(unknown)", "(unknown)"]
    assert lyrics.era([1967], width=25).tolist() == ["1950-1974"]


# --------------------------------------------------------------------------- genre level
@pytest.fixture(scope="module")
def moura():
    return pd.read_csv(require_shared("lyrics", "tcc_ceds_music_subset1000.csv"))


@pytest.mark.shared_data
def test_tfidf_per_genre_finds_distinctive_terms_where_tf_does_not(moura):
    tf = lyrics.term_frequency(moura["lyrics"], moura["genre"], n=10)
    tfidf = lyrics.tfidf_terms(moura["lyrics"], moura["genre"], n=10)
    assert set(tfidf["group"]) == {"blues", "country", "hip hop", "jazz", "pop", "reggae", "rock"}
    # raw counts share their top words across genres ("know", "like", "time"); TF-IDF does not
    assert lyrics.top_terms_overlap(tf) > 0.2
    assert lyrics.top_terms_overlap(tfidf) < 0.1
    top = {g: set(part["term"]) for g, part in tfidf.groupby("group")}
    assert "babylon" in top["reggae"]
    assert {"cowboy", "cowboys"} & top["country"]


@pytest.mark.shared_data
def test_line_sentiment_separates_topics_and_genres(moura):
    scores = lyrics.score_songs(moura["lyrics"], whole_text=False)
    by_topic = lyrics.group_sentiment(scores, moura["topic"], n_boot=300)
    # songs the dataset tags as violent read negative, romantic ones clearly positive
    assert by_topic.loc["violence", "ci_high"] < 0 < by_topic.loc["romantic", "ci_low"]
    by_genre = lyrics.group_sentiment(scores, moura["genre"], n_boot=300)
    assert by_genre["mean"].idxmin() == "hip hop"
    assert (by_genre["ci_low"] <= by_genre["mean"]).all() and (by_genre["mean"] <= by_genre["ci_high"]).all()


@pytest.mark.shared_data
def test_terms_per_era_and_per_artist(moura):
    eras = lyrics.era(moura["release_date"])
    table = lyrics.term_frequency(moura["lyrics"], eras, n=5)
    assert set(table["group"]) == {f"{decade}s" for decade in range(1950, 2020, 10)}
    artist = moura["artist_name"].value_counts().index[0]
    mine = moura[moura["artist_name"] == artist]
    per_artist = lyrics.tfidf_terms(moura["lyrics"], moura["artist_name"], n=5, min_songs=1)
    words = set(lyrics.tokenize(" ".join(mine["lyrics"])))
    assert set(per_artist.loc[per_artist["group"] == artist, "term"]) <= words


def test_lexicon_coverage_counts_lines_vader_cannot_read():
    from helpers.lyrics import analysis as lyrics

    coverage = lyrics.lexicon_coverage(["I love the sunshine\nThee and thy hills", "o'er the lea"])
    assert coverage["lines"] == 3
    assert coverage["lines_without_lexicon_word"] == 2 / 3  # "love" is listed, the rest are not
    assert 0 < coverage["content_words_in_lexicon"] < 1
    assert coverage["archaic_tokens_in_lexicon"] == 0


def test_word_clouds_avoid_the_light_end_of_the_colour_map(tmp_path):
    import numpy as np
    from PIL import Image

    from helpers.lyrics import plots as lyrics_plots

    path = lyrics_plots.save_wordcloud(
        lyrics_plots.make_wordcloud({"alpha": 5, "beta": 3, "gamma": 1}, seed=0), tmp_path / "c.png")
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=float)
    ink = pixels[np.any(np.abs(pixels - 255) > 8, axis=-1)]
    luminance = ink @ np.array([0.2126, 0.7152, 0.0722])
    assert np.median(luminance) < 160  # dark enough to read on white (viridis' yellow is ~220)


def test_word_cloud_colours_read_on_white():
    import matplotlib.pyplot as plt

    from helpers.lyrics.plots import READABLE_RANGE

    def luminance(colour):
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in colour[:3]]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    for fraction in np.linspace(*READABLE_RANGE, 5):  # WCAG contrast against white
        assert 1.05 / (luminance(plt.get_cmap("viridis")(fraction)) + 0.05) >= 4.5
