"""Genre models: the registry, candidate recipes, tuning, selection, files and the default model.

Lower modules first: ``pipelines`` (conditioning, the feature guard, models by name, grids), ``candidates``
(recipes and calibration), ``training`` (training-row fingerprint, extra rows), ``card`` (model
cards, read without machine learning), ``files`` (trusted model files), ``novelty`` (open-set
signals and the flag rule), ``tuning`` (artist-grouped CV), ``selection`` (the default chosen
by it), ``openset`` (the rule validated), ``compact`` (a linear model as numpy numbers),
``default`` (the default model, fitted and cached). Names are handed on lazily: importing this
package loads none of them.
"""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(__name__, submodules=[
    "candidates", "card", "compact", "default", "files", "novelty", "openset", "pipelines",
    "selection", "training", "tuning",
], submod_attrs={
    "pipelines": ["CONDITIONING_METHODS", "MODEL_FEATURES", "MODEL_NAMES", "OFFSET_FEATURES",
                  "FeatureConditioner", "FeatureGuard", "build_model", "fit_on_table", "make_knn",
                  "make_logreg", "param_grid"],
    "candidates": ["CALIBRATION_METHODS", "CANDIDATES", "CANDIDATE_NAMES", "Candidate",
                   "calibrate", "fit_grouped", "get_candidate"],
    "training": ["merge_extra_rows", "table_fingerprint"],
    "card": ["describe_model", "library_versions", "model_summary"],
    "files": ["MODEL_FILE_FORMAT", "TRUSTED_TYPES", "load_model", "model_metadata",
              "read_model_metadata", "save_model"],
    "selection": ["Selection", "fit_candidate", "select_model"],
    "default": ["candidate_model", "default_model", "model_card", "resolve_model",
                "selection_result", "write_shipped_selection"],
})
