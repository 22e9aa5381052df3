"""helpers.stats comparisons against textbook values computed by hand."""

import numpy as np
import pytest

from helpers import stats
from helpers.errors import InputError


def test_clopper_pearson_and_wilson_for_3_of_10():
    # Clopper-Pearson 3/10: the beta quantiles B(0.025; 3, 8) and B(0.975; 4, 7)
    assert stats.binomial_interval(3, 10) == pytest.approx((0.0667, 0.6525), abs=1e-4)
    assert stats.binomial_interval(3, 10, method="wilson") == pytest.approx((0.1078, 0.6032), abs=1e-4)


def test_exact_interval_of_all_successes_is_not_degenerate():
    # 2 of 2: [(alpha/2)^(1/2), 1] = [0.1581, 1]; a bootstrap would give [1, 1]
    assert stats.binomial_interval(2, 2) == pytest.approx((0.1581, 1.0), abs=1e-4)
    assert stats.binomial_interval(0, 5)[0] == 0.0
    with pytest.raises(InputError):
        stats.binomial_interval(3, 2)


def test_mcnemar_exact_p_for_1_against_9_discordant():
    # only a right on 9 clips, only b right on 1: p = 2 * (1 + 10) / 2**10 = 0.021484375
    a = [True] * 9 + [False] + [True] * 20 + [False] * 5
    b = [False] * 9 + [True] + [True] * 20 + [False] * 5
    result = stats.mcnemar(a, b)
    assert result.test == "McNemar exact"
    assert result.p_value == pytest.approx(0.021484375)
    assert result.estimate == pytest.approx(8 / 35)
    assert dict(result.detail)["only_a_right"] == 9 and result.n == 35


def test_mcnemar_chi_square_with_continuity_correction():
    # Agresti's approval example: b = 150, c = 86 -> (|150 - 86| - 1)^2 / 236 = 16.82
    a = [True] * 150 + [False] * 86 + [True] * 794
    b = [False] * 150 + [True] * 86 + [True] * 794
    result = stats.mcnemar(a, b)
    assert result.test == "McNemar chi-square"
    assert result.statistic == pytest.approx(3969 / 236)
    assert result.p_value == pytest.approx(4.1e-5, rel=0.05)
    assert stats.mcnemar([True, False], [True, False]).p_value == 1.0  # no discordant clip


def test_nadeau_bengio_corrected_t_on_given_folds():
    # differences 0.1, 0, 0.1, 0.1, 0.05: mean 0.07, s^2 = 0.002, factor 1/5 + 20/80 = 0.45,
    # se = sqrt(0.0009) = 0.03, t = 2.333 on 4 df
    result = stats.corrected_resampled_ttest([0.8, 0.7, 0.9, 0.8, 0.75], [0.7, 0.7, 0.8, 0.7, 0.7],
                                             n_train=80, n_test=20)
    assert result.statistic == pytest.approx(7 / 3)
    assert dict(result.detail)["se"] == pytest.approx(0.03)
    assert result.p_value == pytest.approx(0.0800, abs=1e-4)
    assert result.interval[0] < 0 < result.interval[1]  # t(4) 97.5% = 2.776 > 2.333


def test_corrected_t_is_wider_than_the_naive_one():
    # 50 folds of 5-fold CV over 1000 clips, mean gain 0.028 with std 0.026: t about 2.05
    diff = np.full(50, 0.028)
    diff[::2] += 0.026
    diff[1::2] -= 0.026
    result = stats.corrected_resampled_ttest(diff, np.zeros(50), n_train=800, n_test=200)
    naive_t = diff.mean() / (diff.std(ddof=1) / np.sqrt(50))
    assert result.statistic == pytest.approx(2.05, abs=0.01) and naive_t > 7
    assert result.interval[0] > 0


def test_paired_difference_interval_holds_the_mean_gain():
    rng = np.random.default_rng(0)
    a = rng.normal(0.5, 0.1, 200)
    result = stats.paired_difference(a + 0.05, a)
    assert result.estimate == pytest.approx(0.05)
    assert result.interval == pytest.approx((0.05, 0.05))
    with pytest.raises(InputError):
        stats.paired_difference([1, 2], [1, 2, 3])


def test_difference_of_means_of_independent_groups():
    rng = np.random.default_rng(1)
    a, b = rng.normal(1.0, 1.0, 400), rng.normal(0.0, 1.0, 300)
    result = stats.difference_of_means(a, b)
    # the textbook standard error sqrt(1/400 + 1/300) = 0.0764: a 95% interval about ±0.15 wide
    assert result.interval[1] - result.interval[0] == pytest.approx(2 * 1.96 * np.sqrt(1 / 400 + 1 / 300), rel=0.15)
    assert result.interval[0] < result.estimate < result.interval[1]
    assert dict(result.detail) == {"n_a": 400, "n_b": 300}
