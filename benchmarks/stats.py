"""Statistics for benchmark scores, following rliable (Agarwal et al. 2021) (SPEC B6).

Every function is pure: scores come in as arrays, randomness as an explicit
``np.random.Generator``. A *score matrix* has shape ``(num_runs, num_tasks)``: one row per
independent run (seed), one column per task or environment. Conventions:

- **IQM** (interquartile mean) is the mean of the middle 50% of all ``num_runs × num_tasks``
  scores pooled together: sort them, drop ``floor(0.25 · n)`` from each end, average the rest.
  This is ``scipy.stats.trim_mean(scores, 0.25, axis=None)``, the definition rliable uses
  (``rliable/metrics.py: aggregate_iqm``). For 1..8 it drops {1, 2} and {7, 8} → 4.5; with
  fewer than 4 scores nothing is dropped and the IQM is the mean.
- **Stratified bootstrap**: each replicate resamples runs with replacement *independently for
  every task* (column), keeping the number of runs per task; the confidence interval is the
  percentile interval of the statistic over replicates (rliable's ``StratifiedBootstrap`` with
  ``method="percentile"``).
- **Probability of improvement** ``P(X > Y)``: per task, the Mann–Whitney U statistic divided
  by ``n·m``, i.e. the fraction of run pairs with ``x > y`` plus half the fraction of ties;
  then averaged over tasks (rliable ``probability_of_improvement``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from numbers import Real

import numpy as np

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_REPS",
    "bootstrap_curve_band",
    "episodes_to_reach",
    "iqm",
    "probability_of_improvement",
    "probability_of_improvement_ci",
    "stratified_bootstrap_ci",
]

DEFAULT_REPS = 2000
"""Bootstrap replicates used by the reports (rliable's examples use 2000–50000)."""
DEFAULT_CONFIDENCE = 0.95
"""Coverage of every reported confidence interval."""
IQM_TRIM = 0.25
"""Fraction cut from each end of the sorted scores for the IQM."""


def _score_matrix(scores: object, name: str = "scores") -> np.ndarray:
    """``scores`` as a float ``(num_runs, num_tasks)`` array; a 1-D array is one task."""
    array = np.asarray(scores, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty (num_runs, num_tasks) matrix, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {array.tolist()!r}")
    return array


def _check_confidence(confidence: object) -> float:
    if isinstance(confidence, bool) or not isinstance(confidence, Real) or not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must be a number in (0, 1), got {confidence!r}")
    return float(confidence)


def _check_reps(reps: object) -> int:
    if isinstance(reps, bool) or not isinstance(reps, (int, np.integer)) or reps < 1:
        raise ValueError(f"reps must be a positive int, got {reps!r}")
    return int(reps)


def _check_rng(rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def iqm(scores: object) -> float:
    """Interquartile mean of all scores pooled (rliable ``aggregate_iqm``; see module docstring)."""
    flat = np.sort(_score_matrix(scores).ravel())
    cut = int(IQM_TRIM * flat.size)
    return float(flat[cut : flat.size - cut].mean())


def _percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


def stratified_bootstrap_ci(
    scores: object,
    statistic: Callable[[np.ndarray], float] = iqm,
    reps: int = DEFAULT_REPS,
    confidence: float = DEFAULT_CONFIDENCE,
    rng: np.random.Generator | None = None,
) -> tuple[float, float, float]:
    """Point estimate and percentile confidence interval of ``statistic`` over a score matrix.

    Each of ``reps`` replicates draws, for every task column separately, ``num_runs`` run
    indices with replacement (stratified bootstrap, rliable). ``statistic`` maps a
    ``(num_runs, num_tasks)`` matrix to a number. Returns ``(estimate, low, high)``, where
    ``estimate`` is the statistic on the original scores. ``rng`` defaults to
    ``np.random.default_rng(0)`` so reports are reproducible.
    """
    matrix = _score_matrix(scores)
    reps = _check_reps(reps)
    confidence = _check_confidence(confidence)
    rng = _check_rng(np.random.default_rng(0) if rng is None else rng)
    num_runs, num_tasks = matrix.shape
    run_index = rng.integers(num_runs, size=(reps, num_runs, num_tasks))  # (reps, runs, tasks)
    task_index = np.arange(num_tasks)[None, None, :]  # (1, 1, tasks)
    resampled = matrix[run_index, task_index]  # (reps, runs, tasks)
    values = np.array([float(statistic(sample)) for sample in resampled])
    low, high = _percentile_interval(values, confidence)
    return float(statistic(matrix)), low, high


def probability_of_improvement(x_scores: object, y_scores: object) -> float:
    """``P(X > Y) + 0.5 · P(X = Y)`` per task, averaged over tasks (rliable; module docstring).

    ``x_scores`` is ``(n, num_tasks)`` and ``y_scores`` is ``(m, num_tasks)``; ``n`` and ``m``
    may differ. 1.0 means every run of X beats every run of Y on every task, 0.5 a tie.
    """
    x = _score_matrix(x_scores, "x_scores")
    y = _score_matrix(y_scores, "y_scores")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x_scores and y_scores must have the same number of tasks, got {x.shape} and {y.shape}")
    greater = (x[:, None, :] > y[None, :, :]).mean(axis=(0, 1))  # (tasks,)
    ties = (x[:, None, :] == y[None, :, :]).mean(axis=(0, 1))  # (tasks,)
    return float(np.mean(greater + 0.5 * ties))


def probability_of_improvement_ci(
    x_scores: object,
    y_scores: object,
    reps: int = DEFAULT_REPS,
    confidence: float = DEFAULT_CONFIDENCE,
    rng: np.random.Generator | None = None,
) -> tuple[float, float, float]:
    """:func:`probability_of_improvement` with a percentile bootstrap interval.

    Runs of X and of Y are resampled independently, stratified by task (rliable's
    ``StratifiedIndependentBootstrap``). Returns ``(estimate, low, high)``.
    """
    x = _score_matrix(x_scores, "x_scores")
    y = _score_matrix(y_scores, "y_scores")
    estimate = probability_of_improvement(x, y)
    reps = _check_reps(reps)
    confidence = _check_confidence(confidence)
    rng = _check_rng(np.random.default_rng(0) if rng is None else rng)
    tasks = np.arange(x.shape[1])[None, :]
    values = np.empty(reps)
    for rep in range(reps):
        x_sample = x[rng.integers(x.shape[0], size=x.shape), tasks]
        y_sample = y[rng.integers(y.shape[0], size=y.shape), tasks]
        values[rep] = probability_of_improvement(x_sample, y_sample)
    low, high = _percentile_interval(values, confidence)
    return estimate, low, high


def episodes_to_reach(
    curve_episodes: Sequence[float], curve_success: Sequence[float], threshold: float
) -> float | None:
    """Training episodes at the first evaluation whose success rate is ``>= threshold``.

    No interpolation between evaluation points: the answer is one of ``curve_episodes`` (so it
    is an upper bound at the resolution of the evaluation schedule), or ``None`` if the curve
    never reaches ``threshold``. ``curve_episodes`` must be non-decreasing.
    """
    episodes = np.asarray(curve_episodes, dtype=np.float64)
    success = np.asarray(curve_success, dtype=np.float64)
    if episodes.ndim != 1 or episodes.shape != success.shape:
        raise ValueError(
            f"curve_episodes and curve_success must be 1-D and of equal length, got shapes {episodes.shape} "
            f"and {success.shape}"
        )
    if np.any(np.diff(episodes) < 0):
        raise ValueError(f"curve_episodes must be non-decreasing, got {episodes.tolist()!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, Real):
        raise TypeError(f"threshold must be a number, got {threshold!r}")
    if not np.isfinite(threshold):  # NaN compares False with every success rate: "never reached"
        raise ValueError(f"threshold must be finite, got {threshold!r}")
    reached = np.flatnonzero(success >= threshold)
    return float(episodes[reached[0]]) if reached.size else None


def bootstrap_curve_band(
    curves: Sequence[tuple[Sequence[float], Sequence[float]]],
    grid: Sequence[float] | None = None,
    center: str = "median",
    reps: int = DEFAULT_REPS,
    confidence: float = DEFAULT_CONFIDENCE,
    rng: np.random.Generator | None = None,
) -> dict[str, np.ndarray]:
    """Per-x center and percentile-bootstrap band of learning curves over seeds.

    ``curves`` holds one ``(episodes, success)`` pair per seed. Seeds are evaluated at slightly
    different episode counts, so every curve is linearly interpolated onto ``grid`` (default:
    the sorted union of all curves' x values); a curve contributes only inside its own x range
    (no extrapolation). At each grid point the seeds with data are resampled with replacement
    ``reps`` times and the ``center`` statistic (``"median"`` or ``"mean"``) is taken; the band
    is the percentile interval of those replicates.

    Returns ``{"x", "center", "low", "high", "count"}``, arrays over the grid; ``count`` is the
    number of seeds with data at each x (points with none are dropped).
    """
    if center not in ("median", "mean"):
        raise ValueError(f"center must be 'median' or 'mean', got {center!r}")
    if len(curves) == 0:
        raise ValueError("curves must hold at least one (episodes, success) pair")
    reps = _check_reps(reps)
    confidence = _check_confidence(confidence)
    rng = _check_rng(np.random.default_rng(0) if rng is None else rng)
    reduce = np.median if center == "median" else np.mean
    parsed = []
    for index, (xs, ys) in enumerate(curves):
        xs, ys = np.asarray(xs, np.float64), np.asarray(ys, np.float64)
        if xs.ndim != 1 or xs.shape != ys.shape or xs.size == 0:
            raise ValueError(
                f"curve {index} must be two equal-length non-empty 1-D sequences, got {xs.shape}, {ys.shape}"
            )
        if np.any(np.diff(xs) < 0):
            raise ValueError(f"curve {index} episodes must be non-decreasing, got {xs.tolist()!r}")
        parsed.append((xs, ys))
    x_grid = np.unique(np.concatenate([xs for xs, _ in parsed])) if grid is None else np.asarray(grid, np.float64)
    values = np.full((len(parsed), x_grid.size), np.nan)  # (seeds, grid)
    for row, (xs, ys) in enumerate(parsed):
        inside = (x_grid >= xs[0]) & (x_grid <= xs[-1])
        values[row, inside] = np.interp(x_grid[inside], xs, ys)
    keep, centers, lows, highs, counts = [], [], [], [], []
    for column in range(x_grid.size):
        seeds = values[~np.isnan(values[:, column]), column]
        if seeds.size == 0:
            continue
        samples = seeds[rng.integers(seeds.size, size=(reps, seeds.size))]  # (reps, seeds)
        low, high = _percentile_interval(reduce(samples, axis=1), confidence)
        keep.append(x_grid[column])
        centers.append(float(reduce(seeds)))
        lows.append(low)
        highs.append(high)
        counts.append(seeds.size)
    return {
        "x": np.array(keep),
        "center": np.array(centers),
        "low": np.array(lows),
        "high": np.array(highs),
        "count": np.array(counts, dtype=np.int64),
    }
