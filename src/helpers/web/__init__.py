"""The web page to share with friends: paste a song URL or upload a file, confirm or correct it.

``app`` (the Flask application factory: access gate, headers, error pages), ``views`` (the
pages and JSON API blueprints), ``jobs`` (background jobs persisted in the label store's file,
and the predict job as a plain function), ``uploads`` (names, the disk quota, header checks),
``security`` (the host rule, wrong-key limiter, sessions and the waitress gate). Names are
handed on lazily.
"""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__, submodules=["app", "jobs", "security", "uploads", "views"],
    submod_attrs={"app": ["create_app"], "jobs": ["run_predict_job", "PredictContext"]})
