"""Lyrics: fetched and validated, cleaned, and read as text.

Lower first: ``validate`` (title/artist normalisation, song-likeness), ``text`` (cleaning of
provider debris), ``fetch`` (Genius and LRCLIB with retries and a cache), ``analysis`` (tokens,
term frequency, TF-IDF, line-by-line sentiment), ``plots`` (word clouds, bars, arcs). Names are
handed on lazily.
"""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(__name__, submodules=[
    "analysis", "fetch", "plots", "text", "validate",
], submod_attrs={
    "fetch": ["LyricsResult", "fetch_lyrics", "load_liked_lyrics"],
    "analysis": ["line_sentiment", "sentiment_summary", "term_frequency", "tfidf_terms", "tokenize"],
})
