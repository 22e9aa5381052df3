"""Reports: numbers stated from the run (``narrate``) and the notebooks run headless into HTML
(``runner``). Names are handed on lazily.
"""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(__name__, submodules=["narrate", "runner"],
                                            submod_attrs={"runner": ["run_reports"]})
