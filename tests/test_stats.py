"""benchmarks.stats on score matrices with known answers (rliable conventions, SPEC B6)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.stats import (
    bootstrap_curve_band,
    episodes_to_reach,
    iqm,
    probability_of_improvement,
    probability_of_improvement_ci,
    stratified_bootstrap_ci,
)


# ---------------------------------------------------------------------------- IQM
def test_iqm_of_one_to_eight_is_the_mean_of_the_middle_half() -> None:
    assert iqm(np.arange(1, 9)) == 4.5  # drops {1, 2} and {7, 8}
    assert iqm(np.arange(1, 9).reshape(4, 2)) == 4.5  # runs x tasks are pooled


def test_iqm_trimming_convention() -> None:
    assert iqm([1.0, 2.0, 3.0]) == 2.0  # floor(0.75) = 0 dropped: the mean
    assert iqm([0.0, 1.0, 1.0, 100.0]) == 1.0  # floor(1.0) = 1 dropped from each end
    assert iqm([0.0, 0.0, 0.0, 0.0, 10.0]) == 0.0  # floor(1.25) = 1: mean of three zeros
    assert iqm(np.r_[np.zeros(10), [1000.0] * 2]) == 0.0  # outliers have no effect


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=40))
def test_iqm_lies_between_min_and_max_and_ignores_order(values: list[float]) -> None:
    result = iqm(values)
    assert min(values) - 1e-9 <= result <= max(values) + 1e-9
    assert result == pytest.approx(iqm(values[::-1]))


def test_iqm_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        iqm([])
    with pytest.raises(ValueError, match="finite"):
        iqm([1.0, np.nan])


# ---------------------------------------------------------------------- bootstrap
def test_bootstrap_ci_of_constant_scores_is_a_point() -> None:
    estimate, low, high = stratified_bootstrap_ci(np.full((5, 3), 0.7), reps=200, rng=np.random.default_rng(1))
    assert (estimate, low, high) == pytest.approx((0.7, 0.7, 0.7))


def test_bootstrap_never_mixes_tasks() -> None:
    """SPEC B6 (rliable's stratified bootstrap): runs are resampled *within* each task column.

    Task 0 is all 0, task 1 all 1: any resampling that keeps each column's values in that column
    gives a mean of exactly 0.5 in every replicate; pooling the scores across tasks would not.
    """
    scores = np.array([[0.0, 1.0]] * 4)
    estimate, low, high = stratified_bootstrap_ci(scores, np.mean, reps=300, rng=np.random.default_rng(2))
    assert (estimate, low, high) == (0.5, 0.5, 0.5)


def test_bootstrap_is_stratified_by_task() -> None:
    """SPEC B6 (rliable ``StratifiedBootstrap``): each task column draws its own run indices.

    Every row of ``[[0, 1], [1, 0]] × 4`` has mean 0.5, so resampling whole rows jointly (the
    same run indices for every task) gives exactly 0.5 in every replicate: a zero-width interval.
    Drawing the runs independently per task decorrelates the columns; the replicate mean is then
    the average of two independent Binomial(8, 1/2) / 8 column means (standard deviation 0.125),
    so the 95% interval is about 0.5 ± 0.245.
    """
    scores = np.array([[0.0, 1.0], [1.0, 0.0]] * 4)
    estimate, low, high = stratified_bootstrap_ci(scores, np.mean, reps=1000, rng=np.random.default_rng(2))
    assert estimate == 0.5
    assert low < 0.5 < high
    assert low == pytest.approx(0.25, abs=0.07) and high == pytest.approx(0.75, abs=0.07)


def test_bootstrap_ci_brackets_the_estimate_and_is_seeded() -> None:
    scores = np.random.default_rng(0).normal(size=(10, 2))
    first = stratified_bootstrap_ci(scores, iqm, reps=500, rng=np.random.default_rng(3))
    again = stratified_bootstrap_ci(scores, iqm, reps=500, rng=np.random.default_rng(3))
    assert first == again
    estimate, low, high = first
    assert low < estimate < high
    assert estimate == iqm(scores)
    narrow = stratified_bootstrap_ci(scores, iqm, reps=500, confidence=0.5, rng=np.random.default_rng(3))
    assert low < narrow[1] <= narrow[2] < high


def test_bootstrap_of_mean_of_zero_one_scores_matches_binomial_spread() -> None:
    scores = np.array([0.0] * 50 + [1.0] * 50)
    _, low, high = stratified_bootstrap_ci(scores, np.mean, reps=4000, rng=np.random.default_rng(4))
    # Standard error 0.05 -> a 95% interval of about 0.5 +- 0.098.
    assert low == pytest.approx(0.402, abs=0.025)
    assert high == pytest.approx(0.598, abs=0.025)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"reps": 0}, ValueError), ({"confidence": 1.0}, ValueError), ({"rng": 3}, TypeError)],
)
def test_bootstrap_rejects_bad_arguments(kwargs: dict, error: type) -> None:
    with pytest.raises(error, match=next(iter(kwargs))):
        stratified_bootstrap_ci(np.ones((3, 1)), **kwargs)


# ---------------------------------------------------------- probability of improvement
def test_probability_of_improvement_known_values() -> None:
    low, high = np.zeros((5, 2)), np.ones((3, 2))
    assert probability_of_improvement(high, low) == 1.0
    assert probability_of_improvement(low, high) == 0.0
    same = np.random.default_rng(0).random((4, 3))
    assert probability_of_improvement(same, same) == pytest.approx(0.5)
    # x = [1, 2], y = [0, 2]: pairs (1>0), (1<2), (2>0), (2=2) -> (2 + 0.5) / 4.
    assert probability_of_improvement([1.0, 2.0], [0.0, 2.0]) == 0.625
    # Averaged over tasks: task 0 gives 1.0, task 1 gives 0.0.
    assert probability_of_improvement([[1.0, 0.0]], [[0.0, 1.0]]) == 0.5


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, 5), min_size=1, max_size=8),
    st.lists(st.integers(0, 5), min_size=1, max_size=8),
)
def test_probability_of_improvement_is_antisymmetric(x: list[int], y: list[int]) -> None:
    assert probability_of_improvement(x, y) + probability_of_improvement(y, x) == pytest.approx(1.0)


def test_probability_of_improvement_ci() -> None:
    estimate, low, high = probability_of_improvement_ci(np.ones((4, 1)), np.zeros((6, 1)), reps=200)
    assert (estimate, low, high) == (1.0, 1.0, 1.0)
    rng = np.random.default_rng(5)
    x, y = rng.normal(0.5, 1.0, size=(20, 1)), rng.normal(0.0, 1.0, size=(20, 1))
    estimate, low, high = probability_of_improvement_ci(x, y, reps=500, rng=np.random.default_rng(6))
    assert low < estimate < high
    assert 0.0 <= low and high <= 1.0
    with pytest.raises(ValueError, match="same number of tasks"):
        probability_of_improvement(np.ones((2, 2)), np.ones((2, 3)))


# --------------------------------------------------------------- episodes to reach
def test_episodes_to_reach() -> None:
    episodes = [0, 100, 200, 300, 400]
    success = [0.0, 0.2, 0.55, 0.5, 0.9]
    assert episodes_to_reach(episodes, success, 0.5) == 200.0
    assert episodes_to_reach(episodes, success, 0.8) == 400.0
    assert episodes_to_reach(episodes, success, 0.0) == 0.0
    assert episodes_to_reach(episodes, success, 0.95) is None
    assert episodes_to_reach([], [], 0.5) is None
    with pytest.raises(ValueError, match="equal length"):
        episodes_to_reach([0, 1], [0.5], 0.5)
    with pytest.raises(ValueError, match="non-decreasing"):
        episodes_to_reach([10, 5], [0.0, 1.0], 0.5)
    with pytest.raises(ValueError, match="finite"):  # NaN would read as "never reached"
        episodes_to_reach(episodes, success, float("nan"))


# ------------------------------------------------------------------ curve bands
def test_curve_band_identical_curves_collapse() -> None:
    curve = ([0, 10, 20], [0.0, 0.5, 1.0])
    band = bootstrap_curve_band([curve, curve, curve], reps=100)
    np.testing.assert_array_equal(band["x"], [0.0, 10.0, 20.0])
    np.testing.assert_array_equal(band["center"], [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(band["low"], band["center"])
    np.testing.assert_array_equal(band["high"], band["center"])
    np.testing.assert_array_equal(band["count"], [3, 3, 3])


def test_curve_band_interpolates_and_does_not_extrapolate() -> None:
    a = ([0, 10, 20], [0.0, 0.0, 0.0])
    b = ([0, 12], [1.0, 1.0])
    band = bootstrap_curve_band([a, b], center="mean", reps=500, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(band["x"], [0.0, 10.0, 12.0, 20.0])
    np.testing.assert_array_equal(band["count"], [2, 2, 2, 1])
    np.testing.assert_allclose(band["center"], [0.5, 0.5, 0.5, 0.0])
    assert band["low"][0] == 0.0 and band["high"][0] == 1.0  # two seeds, resampled
    assert band["low"][-1] == band["high"][-1] == 0.0  # one seed left
    mid = bootstrap_curve_band([([0, 10], [0.0, 1.0])], grid=[5.0], reps=10)
    assert mid["center"].tolist() == [0.5]


def test_curve_band_median_is_robust() -> None:
    curves = [([0, 1], [v, v]) for v in (0.1, 0.2, 0.3, 0.4, 1.0)]
    band = bootstrap_curve_band(curves, reps=1000, rng=np.random.default_rng(1))
    np.testing.assert_allclose(band["center"], [0.3, 0.3])
    assert np.all(band["low"] <= band["center"]) and np.all(band["center"] <= band["high"])
    assert np.all(band["high"] <= 1.0) and np.all(band["low"] >= 0.1)
    with pytest.raises(ValueError, match="center"):
        bootstrap_curve_band(curves, center="mode")
