"""Labelling: asking a person about songs, and learning from the answers.

Lower first: ``queries`` (which song next), ``retrain`` (fits on the answers, scored on artists
never seen), ``simulation`` (the loop replayed with true labels), ``pool`` (files and their
window features), ``widget`` (the notebook labeler). Names are handed on lazily.
"""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(__name__, submodules=[
    "pool", "queries", "retrain", "simulation", "widget",
], submod_attrs={
    "widget": ["Labeler", "scripted_session", "session_log"],
})
