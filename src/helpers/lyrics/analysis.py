"""Analyse lyrics: words, term frequency, TF-IDF and line-by-line sentiment.

Everything works offline: stop words come from wordcloud's and scikit-learn's bundled lists
(plus lyric fillers and archaic pronouns), tokens from one Unicode regular expression
(:data:`WORD_PATTERN`; nothing needs NLTK data or ``nltk.download``), sentiment from the
lexicon that ships inside the ``vaderSentiment`` wheel.

Sentiment is scored **line by line** and aggregated (mean, median, share of positive and
negative lines, the arc over the song): VADER's compound score of a whole long text saturates
near ±1, so it says little about a song.

Examples
--------
>>> from helpers import lyrics
>>> lyrics.tokenize("Oh, the café is open — ¡niño, don't cry!")
['café', 'open', 'niño', 'cry']
>>> summary = lyrics.sentiment_summary("I love you so\\nI hate the rain\\nThe sun is warm")
>>> summary["n_lines"], summary["share_positive"] > summary["share_negative"]
(3, True)
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
from wordcloud import STOPWORDS

from helpers.errors import InputError
from helpers.stats import bootstrap_mean_interval

#: Sung syllables and interjections that carry no topic.
LYRIC_FILLERS = frozenset("""
oh ooh oooh ah ahh aah uh uhh huh hey yeah yea ya yeh la na da dum doo di de whoa woah wo
mm mmm hmm ha hah lo tra fa fal lal ay ai eh
""".split())
#: Archaic function words (thee, thy, 'tis, ...) common in older songs and hymns.
ARCHAIC_FUNCTION_WORDS = frozenset("""
thee thy thou thine ye tis twas ere oft hath doth art shalt wilt thyself o'er e'er ne'er
""".split())


#: Words of scikit-learn's stop-word list that carry meaning in lyrics ("cry", "fire",
#: "alone", ...); they are kept.
LYRIC_CONTENT_WORDS = frozenset("""
alone bill bottom cry describe detail empty fire full interest mill mine never nobody nothing
everything everyone someone something sincere serious system thick thin together top whole
""".split())


@lru_cache(maxsize=1)
def _base_stop_words() -> frozenset:
    return frozenset(STOPWORDS) | (frozenset(ENGLISH_STOP_WORDS) - LYRIC_CONTENT_WORDS)


def stop_words(extra: Iterable[str] = (), *, fillers: bool = True, archaic: bool = True) -> frozenset:
    """Return the offline English stop-word list used by default.

    Parameters
    ----------
    extra : iterable of str
        More words to drop (e.g. corpus debris).
    fillers : bool
        Include :data:`LYRIC_FILLERS` ("oh", "yeah", "la", ...).
    archaic : bool
        Include :data:`ARCHAIC_FUNCTION_WORDS` ("thee", "thy", ...).
    """
    words = set(_base_stop_words()) | {w.lower() for w in extra}
    if fillers:
        words |= LYRIC_FILLERS
    if archaic:
        words |= ARCHAIC_FUNCTION_WORDS
    return frozenset(words)


#: A word: Unicode letters (accents kept) with inner apostrophes (don't, o'er, rock'n'roll).
#: The same pattern as NLTK's data-free ``RegexpTokenizer`` would take, without importing NLTK
#: (whose import alone costs seconds).
WORD_PATTERN = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")


def tokenize(text: str, *, stop: Iterable[str] | None = None, min_length: int = 2) -> list[str]:
    """Split *text* into lower-case word tokens without stop words.

    Parameters
    ----------
    text : str
    stop : iterable of str, optional
        Stop words to drop (default :func:`stop_words`); pass ``()`` to keep every word.
    min_length : int
        Shortest token kept.

    Returns
    -------
    list of str
    """
    if not isinstance(text, str):
        return []
    drop = stop_words() if stop is None else frozenset(stop)
    text = text.replace("\u2019", "'").replace("\u2018", "'").lower()
    tokens = (t.strip("'") for t in WORD_PATTERN.findall(text))
    return [t for t in tokens if len(t) >= min_length and t not in drop]


def word_counts(texts: Iterable[str] | str, **tokenize_kw) -> pd.Series:
    """Return how often each word occurs over *texts*, most frequent first."""
    if isinstance(texts, str):
        texts = [texts]
    counts = Counter()
    for text in texts:
        counts.update(tokenize(text, **tokenize_kw))
    series = pd.Series(counts, dtype="int64", name="count")
    series.index.name = "term"
    return series.sort_values(ascending=False, kind="stable")


def _groups(texts: pd.Series, groups) -> pd.Series:
    if groups is None:
        return pd.Series(texts.index.astype(str), index=texts.index, name="group")
    if len(groups) != len(texts):
        raise InputError("groups", f"has {len(groups)} entries for {len(texts)} texts")
    groups = pd.Series(list(groups), index=texts.index) if not isinstance(groups, pd.Series) \
        else groups
    return groups.fillna("(none)").astype(str).rename("group")


def term_frequency(texts, groups=None, *, n: int | None = 20, **tokenize_kw) -> pd.DataFrame:
    """Return the most frequent terms per group (or per song) with counts and relative frequency.

    Parameters
    ----------
    texts : sequence or pandas.Series of str
        One text per song.
    groups : sequence or pandas.Series, optional
        A group label per song (genre, artist, era, ...); default one group per song.
    n : int or None
        Terms kept per group (``None``: all).

    Returns
    -------
    pandas.DataFrame
        Columns ``group``, ``term``, ``count``, ``tf`` (count / tokens in the group), ``rank``
        (1 = most frequent), ``songs`` (songs of the group using the term).
    """
    texts = pd.Series(texts)
    labels = _groups(texts, groups)
    rows = []
    for label, idx in labels.groupby(labels, sort=True).groups.items():
        token_lists = [tokenize(t, **tokenize_kw) for t in texts.loc[idx]]
        counts = Counter(tok for tokens in token_lists for tok in tokens)
        songs = Counter(tok for tokens in token_lists for tok in set(tokens))
        total = sum(counts.values())
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        for rank, (term, count) in enumerate(ranked[:n] if n else ranked, start=1):
            rows.append({"group": label, "term": term, "count": count,
                         "tf": count / total, "rank": rank, "songs": songs[term]})
    return pd.DataFrame(rows, columns=["group", "term", "count", "tf", "rank", "songs"])


def tfidf_terms(texts, groups=None, *, n: int = 10, min_songs: int | None = None,
                sublinear_tf: bool = True, **tokenize_kw) -> pd.DataFrame:
    """Return the terms with the highest TF-IDF per song or per group.

    Per group, the songs of a group are joined into one document and IDF is computed across
    groups (class-based TF-IDF): a term scores high when it is frequent in the group and rare in
    the others. Terms used by fewer than *min_songs* songs overall are left out, so one song's
    oddities (names, sung vowel runs) do not define a whole group.

    Parameters
    ----------
    texts : sequence or pandas.Series of str
    groups : sequence or pandas.Series, optional
        Group label per song; default per song (IDF across songs).
    n : int
        Terms kept per group or song.
    min_songs : int, optional
        Default 3 per group, 1 per song.
    sublinear_tf : bool
        Use 1 + log(tf), which keeps one very repetitive chorus from dominating.

    Returns
    -------
    pandas.DataFrame
        Columns ``group``, ``term``, ``score``, ``rank``.
    """

    texts = pd.Series(texts).fillna("")
    labels = _groups(texts, groups)
    token_lists = [tokenize(t, **tokenize_kw) for t in texts]
    if min_songs is None:
        min_songs = 1 if groups is None else 3
    song_df = Counter(tok for tokens in token_lists for tok in set(tokens))
    vocabulary = sorted(t for t, df in song_df.items() if df >= min_songs)
    if not vocabulary:
        return pd.DataFrame(columns=["group", "term", "score", "rank"])
    docs = pd.Series(token_lists, index=texts.index).groupby(labels, sort=True).sum() \
        if groups is not None else pd.Series(token_lists, index=labels.values)
    vectorizer = TfidfVectorizer(analyzer=lambda tokens: tokens, vocabulary=vocabulary,
                                 sublinear_tf=sublinear_tf)
    matrix = vectorizer.fit_transform([list(d) if isinstance(d, list) else [] for d in docs])
    terms = np.asarray(vectorizer.get_feature_names_out())
    rows = []
    for label, row in zip(docs.index, matrix.toarray(), strict=True):
        order = np.argsort(-row, kind="stable")[:n]
        for rank, j in enumerate((j for j in order if row[j] > 0), start=1):
            rows.append({"group": str(label), "term": terms[j], "score": float(row[j]), "rank": rank})
    return pd.DataFrame(rows, columns=["group", "term", "score", "rank"])


def top_terms_overlap(table: pd.DataFrame) -> float:
    """Return the mean Jaccard overlap of the term lists of every pair of groups in *table*.

    Low values mean the groups' top terms are distinct (what TF-IDF is for).
    """
    sets = [set(g["term"]) for _, g in table.groupby("group")]
    pairs = [(a, b) for i, a in enumerate(sets) for b in sets[i + 1:]]
    if not pairs:
        return float("nan")
    return float(np.mean([len(a & b) / len(a | b) for a, b in pairs if a | b]))


# --------------------------------------------------------------------------- sentiment
@lru_cache(maxsize=1)
def _analyzer():
    return SentimentIntensityAnalyzer()


@lru_cache(maxsize=65536)
def _polarity(line: str) -> tuple[float, float, float, float]:
    # Choruses repeat lines, so memoising saves much of VADER's (pure-Python) time.
    scores = _analyzer().polarity_scores(line)
    return scores["compound"], scores["pos"], scores["neu"], scores["neg"]


def song_lines(text: str) -> list[str]:
    """Return the non-empty lines of a song, stripped."""
    if not isinstance(text, str):
        return []
    return [line.strip() for line in text.splitlines() if line.strip()]


def line_sentiment(text: str) -> pd.DataFrame:
    """Score every line of a song with VADER.

    Returns
    -------
    pandas.DataFrame
        One row per non-empty line: ``line_no``, ``position`` (0-1, middle of the line's slot
        in the song), ``line``, ``compound`` (-1..1), ``pos``, ``neu``, ``neg``.
    """
    lines = song_lines(text)
    scores = np.array([_polarity(line) for line in lines], dtype=float).reshape(-1, 4)
    n = len(lines)
    return pd.DataFrame({
        "line_no": np.arange(n), "position": (np.arange(n) + 0.5) / max(n, 1), "line": lines,
        "compound": scores[:, 0], "pos": scores[:, 1], "neu": scores[:, 2], "neg": scores[:, 3]})


def sentiment_arc(text_or_lines, bins: int = 10) -> np.ndarray:
    """Return the mean line sentiment in *bins* equal parts of the song (its arc).

    Parts without a line (short songs) are interpolated from their neighbours.

    Parameters
    ----------
    text_or_lines : str or pandas.DataFrame
        Lyrics, or the output of :func:`line_sentiment`.
    bins : int

    Returns
    -------
    numpy.ndarray
        Shape ``(bins,)``; all NaN for a text without lines.
    """
    if isinstance(text_or_lines, pd.DataFrame):
        compound = text_or_lines["compound"].to_numpy(dtype=float)
    else:
        compound = _line_compounds(text_or_lines)
    return _arc(compound, bins)


def _line_compounds(text: str) -> np.ndarray:
    return np.array([_polarity(line)[0] for line in song_lines(text)], dtype=float)


def _arc(compound: np.ndarray, bins: int) -> np.ndarray:
    arc = np.full(bins, np.nan)
    n = len(compound)
    if n == 0:
        return arc
    # same slots as line_sentiment's "position": the middle of each line's share of the song
    slot = np.minimum(((np.arange(n) + 0.5) / n * bins).astype(int), bins - 1)
    sums = np.bincount(slot, weights=compound, minlength=bins)
    counts = np.bincount(slot, minlength=bins)
    filled = counts > 0
    arc[filled] = sums[filled] / counts[filled]
    if not filled.all():
        x = np.arange(bins)
        arc = np.interp(x, x[filled], arc[filled])
    return arc


def sentiment_summary(text: str, *, threshold: float = 0.05, bins: int = 10,
                      whole_text: bool = True) -> dict:
    """Aggregate line-by-line VADER scores of one song.

    Parameters
    ----------
    text : str
    threshold : float
        A line is positive when its compound score is >= threshold, negative when <= -threshold
        (VADER's own convention).
    bins : int
        Parts of the song for the arc.
    whole_text : bool
        Also score the whole text at once (costs as much again; NaN when False).

    Returns
    -------
    dict
        ``n_lines``, ``mean``, ``median``, ``std``, ``share_positive``, ``share_negative``,
        ``share_neutral``, ``arc_change`` (mean of the last third of the arc minus the first
        third), ``whole_text`` (VADER on the whole text at once, for comparison: it saturates).
    """
    compound = _line_compounds(text)
    if compound.size == 0:
        keys = ("mean", "median", "std", "share_positive", "share_negative", "share_neutral",
                "arc_change", "whole_text")
        return {"n_lines": 0} | dict.fromkeys(keys, float("nan"))
    arc = _arc(compound, bins)
    third = max(1, bins // 3)
    return {
        "n_lines": int(compound.size),
        "mean": float(compound.mean()),
        "median": float(np.median(compound)),
        "std": float(compound.std()),
        "share_positive": float((compound >= threshold).mean()),
        "share_negative": float((compound <= -threshold).mean()),
        "share_neutral": float((np.abs(compound) < threshold).mean()),
        "arc_change": float(arc[-third:].mean() - arc[:third].mean()),
        "whole_text": float(_analyzer().polarity_scores(text)["compound"]) if whole_text
        else float("nan"),
    }


def score_songs(texts, *, threshold: float = 0.05, bins: int = 10,
                whole_text: bool = True) -> pd.DataFrame:
    """Return :func:`sentiment_summary` for every song (rows keep the input's index)."""
    texts = pd.Series(texts)
    rows = [sentiment_summary(t, threshold=threshold, bins=bins, whole_text=whole_text)
            for t in texts]
    return pd.DataFrame(rows, index=texts.index)


def sentiment_arcs(texts, bins: int = 10) -> pd.DataFrame:
    """Return the sentiment arc of every song: rows keep the input's index, columns are parts."""
    texts = pd.Series(texts)
    arcs = np.vstack([sentiment_arc(t, bins) for t in texts]) if len(texts) else np.empty((0, bins))
    columns = pd.Index(np.round((np.arange(bins) + 0.5) / bins, 3), name="position")
    return pd.DataFrame(arcs, index=texts.index, columns=columns)


def group_sentiment(scores: pd.DataFrame, groups, *, seed: int = 0,
                    n_boot: int = 1000) -> pd.DataFrame:
    """Summarise song sentiment per group with a bootstrap 95% interval of the mean.

    Parameters
    ----------
    scores : pandas.DataFrame
        Output of :func:`score_songs`.
    groups : sequence or pandas.Series
        Group label per song.

    Returns
    -------
    pandas.DataFrame
        Index ``group``; ``songs``, ``mean`` (mean over songs of the per-song mean line
        sentiment), ``ci_low``, ``ci_high``, ``share_positive``, ``share_negative``,
        ``whole_text`` (mean whole-text score, to compare).
    """
    labels = _groups(scores["mean"], groups)
    rng = np.random.default_rng(seed)
    rows = {}
    for label, part in scores.groupby(labels.values):
        values = part["mean"].dropna().to_numpy()
        if len(values):
            low, high = bootstrap_mean_interval(values, n_boot, rng=rng)
        else:
            low = high = float("nan")
        rows[label] = {"songs": len(part), "mean": float(np.mean(values)) if len(values) else np.nan,
                       "ci_low": float(low), "ci_high": float(high),
                       "share_positive": float(part["share_positive"].mean()),
                       "share_negative": float(part["share_negative"].mean()),
                       "whole_text": float(part["whole_text"].mean())}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "group"
    return frame


def lexicon_coverage(texts) -> dict:
    """How much of *texts* VADER's lexicon can read at all.

    VADER (Hutto & Gilbert 2014) scores a line from the valence of the words its lexicon
    lists (tuned on social-media text); a word it does not list counts as neutral.

    Returns
    -------
    dict
        ``lines`` (non-empty lines), ``lines_without_lexicon_word`` (share of lines in which no
        word is in the lexicon: they score 0 whatever they say), ``content_words`` (tokens
        left after :func:`stop_words`), ``content_words_in_lexicon`` (their share listed in
        the lexicon) and ``archaic_tokens_in_lexicon`` (how many of the distinct
        :data:`ARCHAIC_FUNCTION_WORDS` it lists).
    """
    lexicon = _analyzer().lexicon
    lines = [line for text in pd.Series(texts) for line in song_lines(text)]
    unread = sum(1 for line in lines
                 if not any(word in lexicon for word in tokenize(line, stop=())))
    content = [word for text in pd.Series(texts) for word in tokenize(text)]
    return {
        "lines": len(lines),
        "lines_without_lexicon_word": unread / len(lines) if lines else float("nan"),
        "content_words": len(content),
        "content_words_in_lexicon": (sum(word in lexicon for word in content) / len(content)
                                     if content else float("nan")),
        "archaic_tokens_in_lexicon": sum(word in lexicon for word in ARCHAIC_FUNCTION_WORDS),
    }


def song_report(text: str, n: int = 10) -> dict:
    """Return a small JSON-ready analysis of one song: counts, top terms, sentiment summary."""
    counts = word_counts(text)
    return {
        "n_words": len(text.split()),
        "n_lines": len(song_lines(text)),
        "top_terms": [{"term": t, "count": int(c)} for t, c in counts.head(n).items()],
        "sentiment": {k: (round(v, 4) if isinstance(v, float) else v)
                      for k, v in sentiment_summary(text).items()},
    }


def era(years, width: int = 10) -> pd.Series:
    """Return an era label per year for grouping, e.g. ``1967 -> "1960s"`` (width 10).

    Parameters
    ----------
    years : sequence or pandas.Series of int or float
        Release years; missing or unparseable years give ``"(unknown)"``.
    width : int
        Years per era (10: decades).
    """
    values = pd.to_numeric(pd.Series(years), errors="coerce")
    start = (values // width * width)
    labels = start.map(lambda y: f"{int(y)}s" if width == 10 else f"{int(y)}-{int(y) + width - 1}",
                       na_action="ignore")
    return labels.fillna("(unknown)").rename("era")
