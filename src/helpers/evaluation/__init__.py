"""Evaluation: held-out reports of genre models, the original study reproduced, your songs as a test
bed. ``heldout`` (published splits, CV, figures), ``study`` (the study's numbers and confounds),
``songbed`` (whole-song accuracy on labelled songs), ``robustness`` (a DC offset, one feature far
out). Names are handed on lazily.
"""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(__name__, submodules=["heldout", "robustness", "songbed", "study"],
                                            submod_attrs={
    "heldout": ["SPLITS", "Evaluation", "evaluate_model", "evaluate_models", "grid_test_scores",
                "grouped_cv", "per_genre_report", "plot_confusion", "plot_grid_gap",
                "plot_reliability", "plot_selection", "plot_test_accuracies", "reconcile_models",
                "repeated_cv", "results_frame"],
    "robustness": ["GUARD_VARIANTS", "guard_comparison", "with_dc_offset"],
    "study": ["STUDY_REPORTED", "reproduce_study", "source_confounding", "study_split_spread"],
    "songbed": ["TestBedResult", "evaluate_songs", "load_test_bed", "score_test_bed"],
})
