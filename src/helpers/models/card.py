"""What a model card says, in a line and as the ``model`` object of ``predict --json``.

A model card (see :func:`helpers.models.default.model_card`) travels with a fitted model as its
``model_card_`` attribute, whether the model is a scikit-learn pipeline or its compact copy
(:mod:`helpers.models.compact`); these functions read only that attribute, so describing a prediction
imports no machine-learning library.
"""

from __future__ import annotations

import platform
from importlib import metadata

#: Libraries whose versions a model file depends on (read from the installed metadata, so
#: checking them imports none of them).
MODEL_LIBRARIES = ("numpy", "scipy", "scikit-learn", "pandas", "skops")


def library_versions() -> dict[str, str]:
    """Return the Python version and the versions of :data:`MODEL_LIBRARIES`."""
    versions = {"python": platform.python_version()}
    for name in MODEL_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def describe_model(model) -> str:
    """Return one line naming *model* and its honest accuracy (from its model card).

    Examples
    --------
    >>> describe_model(default_model())  # doctest: +SKIP
    'logreg: 0.566 accuracy [95% CI 0.507-0.624] on the fault-filtered test split (n=290, artists unseen)'
    """
    card = getattr(model, "model_card_", None)
    if not card:
        return "unnamed model (no model card: its honest accuracy is unknown)"
    low, high = card["test_ci95"]
    return (f"{card['name']}: {card['test_accuracy']:.3f} accuracy [95% CI {low:.3f}-{high:.3f}] "
            f"on the {card['test_split']} test split (n={card['n_test']}, artists unseen)")


def model_summary(model) -> dict:
    """Return the ``model`` object of ``music-study predict --json`` for *model*.

    At least ``name``, ``test_accuracy``, ``test_split`` (None when the model has no card).
    """
    card = getattr(model, "model_card_", None) or {}
    keys = ("name", "description", "test_accuracy", "test_ci95", "test_split", "n_test",
            "selection_score", "selection_std")
    summary = {key: card.get(key) for key in keys}
    summary["line"] = describe_model(model)
    rule = card.get("open_set") or {}
    summary["uncertain_rule"] = ({key: rule[key] for key in ("signal", "thresholds", "false_flag_rate",
                                                           "detection_rate") if key in rule}
                                 or None)
    return summary
