"""Benchmark: grouped grid search of a model, as ``tune_model`` runs it vs a plain GridSearchCV.

``tune_model`` caches each fold's fitted conditioning + scaler (shared by every model setting),
hands the search plain arrays with integer labels, and limits BLAS/OpenMP to one thread per
process. The baseline is the textbook ``GridSearchCV(pipeline, grid).fit(frame, labels)``.
Both run in this process on the same folds and must choose the same settings.

Usage: ``python benchmarks/bench_tuning.py [--model knn] [--grid full|small]``
"""

from __future__ import annotations

import argparse
import time

from sklearn.model_selection import GridSearchCV

from helpers import data, models
from helpers.features import MODEL_FEATURES
from helpers.models import tuning


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="knn", choices=models.MODEL_NAMES)
    parser.add_argument("--grid", default="full", choices=["full", "small"])
    args = parser.parse_args()

    train, _ = data.held_out_split(data.load_gtzan_table(), "fault-filtered")
    groups = data.artist_groups(train["filename"]).to_numpy()

    started = time.perf_counter()
    baseline = GridSearchCV(models.build_model(args.model), models.param_grid(args.model, args.grid),
                            cv=tuning.grouped_folds(5, seed=0))
    baseline.fit(train[list(MODEL_FEATURES)], train["label"], groups=groups)
    baseline_seconds = time.perf_counter() - started

    started = time.perf_counter()
    tuned = tuning.tune_model(args.model, train, seed=0, grid=args.grid, cache=False)
    tuned_seconds = time.perf_counter() - started

    same = tuned.params == {k: tuning.plain(v) for k, v in baseline.best_params_.items()}
    print(f"{args.model} ({args.grid} grid, {len(baseline.cv_results_['params'])} settings x 5 "
          f"grouped folds, {len(train)} rows)")
    print(f"  plain GridSearchCV : {baseline_seconds:7.1f} s")
    print(f"  tune_model         : {tuned_seconds:7.1f} s")
    print(f"  speed-up           : {baseline_seconds / tuned_seconds:7.1f}x  (same choice: {same})")


if __name__ == "__main__":
    main()
