"""Music Recommendation Study: genre models, labelling, lyrics and recommendations.

Modules (one concern each)
--------------------------
data        the embedded GTZAN table, splits, artist index and lyrics sample
audio       decoding and windowing of audio files
features    the 58 GTZAN-table features (``FEATURE_COLUMNS``, ``extract_file``)
models      scikit-learn pipelines, tuning, evaluation and model files
store       the SQLite label store: songs, window features, predictions, label events, likes
active      active-learning query strategies, retraining with held-out metrics, simulation
labeler     the ipywidgets labeler that writes every click to the store
report      papermill runner that renders every notebook into ``reports/``
cli         the ``music-study`` command
"""

__version__ = "0.1.0"
