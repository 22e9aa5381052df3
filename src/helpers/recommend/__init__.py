"""Recommendations from a liked-songs list: libraries of songs, retrieval, and its evaluation.

Lower first: ``liked`` (liked-songs lists and matching them to a library), ``recommender``
(similarity spaces, per-liked-song retrieval, hub correction, MMR, artist cap, reasons),
``evaluation`` (simulated users, baselines, precision/recall, coverage, hubness) and ``plots``.
Names are handed on lazily.
"""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(__name__, submodules=[
    "evaluation", "learned", "liked", "plots", "recommender",
], submod_attrs={
    "recommender": ["Library", "Recommendation", "Recommender", "resolve_liked", "song_features"],
    "liked": ["LikedList", "LikedSong", "read_liked_file"],
})
