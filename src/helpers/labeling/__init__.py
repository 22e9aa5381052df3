"""Labelling: asking a person about songs, and learning from the answers.

Lower first: ``queries`` (which song next), ``retrain`` (fits on the answers, scored on artists
never seen), ``simulation`` (the loop replayed with true labels), ``pool`` (files and their
window features), ``session`` (a labelling session without widgets, and the one way a decision
is recorded), ``widget`` (the notebook labeler over a session), ``launch`` (notebook 05 for
labelling by hand, on a working copy). Names are handed on lazily.
"""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(__name__, submodules=[
    "launch", "pool", "queries", "retrain", "session", "simulation", "widget",
], submod_attrs={
    "session": ["LabelingSession", "StaleAnswerError", "record_answer", "session_log"],
    "widget": ["Labeler", "scripted_session"],
})
