"""The web page to share with friends: paste a song URL or upload a file, confirm or correct it.

``security`` (the host rule, wrong-key limiter, sessions and the waitress gate), ``jobs``
(background jobs persisted in the label store's file), ``app`` (the Flask application). Names
are handed on lazily.
"""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(__name__, submodules=["app", "jobs", "security"],
                                            submod_attrs={"app": ["create_app"]})
