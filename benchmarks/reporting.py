"""Tables, learning-curve plots and the manifest of a results folder (SPEC B6).

Everything here is generated from the results folder, never typed by hand::

    RESULTS/
      runs/<env>__<method>__seed<seed>.json   one finished run each (schema below)
      summary.csv, summary.md                 written by write_report
      learning_curves_<env>.png               success vs training episodes, 95% bootstrap band
      learning_curves_<env>_logx.png          the same on a log x axis (paper Fig. A5 style)
      manifest.json                           command, preset, versions, git commit, machine (CPU), wall time

Run JSON schema (``RUN_SCHEMA_VERSION`` 1)::

    {
      "schema_version": 1,
      "method": str,              # registry name, e.g. "internal_rl", "sb3_ppo_privileged"
      "env": str,                 # short env name, e.g. "grid"
      "seed": int,
      "privileged": bool,         # sees information the paper's agents do not (SPEC B2)
      "curve": [{"episodes": int, "env_steps": int, "success_rate": float, "wall_s": float}, ...],
      "final_success_rate": float,
      "wall_s": float,
      "config": {...}             # anything JSON; method-specific
    }

``curve`` is sorted by ``episodes`` (training episodes completed when the policy was
evaluated; the first point is usually the untrained policy at 0). A point's ``wall_s`` is the
run's training wall-clock time in seconds up to it, summed over the processes of a resumed run
(the SB3 baselines exclude evaluation time; a method that cannot separate them says so in its
``config``); one-off work shared by several runs, such as the pipeline methods' base model and
metacontroller, is not in it. The record's ``wall_s`` is the last point's. (Older pipeline
records, those without ``config["shared_setup_s"]``, counted the shared artifacts and only the
last process in it; the report therefore reads the last curve point.) ``final_success_rate`` is
the last point's success rate. The harness adds ``schema_version``, ``preset`` and ``finished_at``.
Statistics follow :mod:`benchmarks.stats` (rliable conventions). All files are written
atomically (temporary file + ``os.replace``, :mod:`hier_envs.atomic_io`, whose writers are
re-exported here).

    python -m benchmarks.reporting results/default --reference internal_rl
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import tyro

from agents.training_utils import machine_description
from benchmarks.stats import (
    DEFAULT_CONFIDENCE,
    DEFAULT_REPS,
    bootstrap_curve_band,
    episodes_to_reach,
    iqm,
    probability_of_improvement_ci,
    stratified_bootstrap_ci,
)
from hier_envs.atomic_io import write_bytes_atomic, write_json_atomic, write_text_atomic

__all__ = [
    "RUN_SCHEMA_VERSION",
    "SUMMARY_COLUMNS",
    "load_runs",
    "run_filename",
    "summarize",
    "validate_run_record",
    "write_json_atomic",
    "write_manifest",
    "write_report",
    "write_text_atomic",
]

RUN_SCHEMA_VERSION = 1
"""Version of the per-run JSON layout (module docstring)."""
DEFAULT_REFERENCE_METHOD = "internal_rl"
"""The method whose probability of improvement over every other method is reported."""
EXPERT_METHOD = "expert"
"""Runs of this method (the data-generating expert, no training) normalise an env's success."""
THRESHOLDS: tuple[float, ...] = (0.5, 0.8)
"""Success rates for the "episodes to reach" columns (SPEC B6)."""
NOT_REACHED = "not reached"
"""Shown in summary.md when the median seed never reaches a threshold (empty cell in the CSV)."""
VERSION_PACKAGES: tuple[str, ...] = (
    "torch",
    "numpy",
    "gymnasium",
    "stable-baselines3",
    "sb3-contrib",
    "matplotlib",
    "hier-rl",
)
"""Distributions whose versions go into the manifest (besides Python)."""

SUMMARY_COLUMNS: tuple[str, ...] = (
    "env",
    "method",
    "privileged",
    "n_seeds",
    "seeds",
    "final_success_median",
    "final_success_mean",
    "final_success_iqm",
    "final_success_iqm_ci_low",
    "final_success_iqm_ci_high",
    "final_success_normalised_median",
    *(f"episodes_to_{round(100 * t)}_median" for t in THRESHOLDS),
    *(f"seeds_reached_{round(100 * t)}" for t in THRESHOLDS),
    "train_episodes_median",
    "env_steps_median",
    "wall_s_median",
    "poi_reference",
    "poi_reference_over_method",
    "poi_ci_low",
    "poi_ci_high",
)
"""Columns of summary.csv, one row per (env, method)."""


# -------------------------------------------------------------------- run records
def run_filename(env: str, method: str, seed: int) -> str:
    """File name of one run's JSON inside ``runs/``."""
    return f"{env}__{method}__seed{seed}.json"


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate_run_record(record: object, source: str = "run") -> dict[str, Any]:
    """Check one run dict against the schema (module docstring); returns it, or raises ValueError."""
    if not isinstance(record, Mapping):
        raise ValueError(f"{source}: a run record must be a JSON object, got {type(record).__name__}")
    problems = []
    for key, kind in (("method", str), ("env", str), ("privileged", bool), ("config", Mapping), ("curve", list)):
        if not isinstance(record.get(key), kind):
            problems.append(f"{key!r} must be {kind.__name__}, got {record.get(key)!r}")
    seed = record.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int):
        problems.append(f"'seed' must be int, got {seed!r}")
    for key in ("final_success_rate", "wall_s"):
        if not _is_number(record.get(key)):
            problems.append(f"{key!r} must be a finite number, got {record.get(key)!r}")
    if _is_number(record.get("wall_s")) and record["wall_s"] < 0:
        problems.append(f"'wall_s' must be >= 0, got {record['wall_s']!r}")
    curve = record.get("curve")
    if isinstance(curve, list):
        if not curve:
            problems.append("'curve' must have at least one point")
        previous = -math.inf
        for index, point in enumerate(curve):
            if not isinstance(point, Mapping) or not all(
                _is_number(point.get(k)) for k in ("episodes", "env_steps", "success_rate", "wall_s")
            ):
                problems.append(
                    f"curve point {index} needs numeric episodes, env_steps, success_rate, wall_s: {point!r}"
                )
                continue
            if point["episodes"] < previous:
                problems.append(f"curve point {index} goes back in episodes ({point['episodes']} < {previous})")
            if not 0.0 <= point["success_rate"] <= 1.0:
                problems.append(f"curve point {index} success_rate {point['success_rate']!r} is outside [0, 1]")
            negative = [k for k in ("episodes", "env_steps", "wall_s") if point[k] < 0]
            if negative:
                problems.append(f"curve point {index} has negative {', '.join(negative)}: {point!r}")
            previous = point["episodes"]
        last = curve[-1] if curve else None
        if isinstance(last, Mapping) and _is_number(last.get("success_rate")) \
                and _is_number(record.get("final_success_rate")) \
                and record["final_success_rate"] != last["success_rate"]:
            problems.append(f"'final_success_rate' {record['final_success_rate']!r} is not the last curve point's "
                            f"success rate {last['success_rate']!r}")
    if problems:
        raise ValueError(f"{source}: invalid run record: " + "; ".join(problems))
    return dict(record)


def load_runs(results_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every run JSON under ``results_dir/runs``, validated, sorted by (env, method, seed)."""
    runs_dir = Path(results_dir) / "runs"
    if not runs_dir.is_dir():
        raise ValueError(f"{runs_dir} does not exist: expected one JSON per finished run there")
    runs = []
    for path in sorted(runs_dir.glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from error
        runs.append(validate_run_record(record, str(path)))
    keys = [(r["env"], r["method"], r["seed"]) for r in runs]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ValueError(f"{runs_dir}: more than one run for (env, method, seed) {duplicates}")
    return sorted(runs, key=lambda r: (r["env"], r["method"], r["seed"]))


def _group(runs: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], list[Mapping[str, Any]]]:
    presets = sorted({str(run["preset"]) for run in runs if "preset" in run})
    if len(presets) > 1:  # different budgets and schedules: one table would mix them
        raise ValueError(f"the runs come from several presets {presets}; summarise each preset's folder on its own")
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for run in runs:
        groups.setdefault((run["env"], run["method"]), []).append(run)
    for (env, method), members in groups.items():
        if len({bool(m["privileged"]) for m in members}) > 1:
            raise ValueError(f"runs of {method!r} on {env!r} disagree on 'privileged'; fix the run JSONs")
    return groups


# ---------------------------------------------------------------------- summaries
def _median_with_misses(values: Sequence[float | None]) -> float | None:
    """Median counting ``None`` (never reached) as +infinity; ``None`` if that median is infinite."""
    median = float(np.median([math.inf if v is None else v for v in values]))
    return None if math.isinf(median) else median


def summarize(
    runs: Sequence[Mapping[str, Any]],
    reference_method: str = DEFAULT_REFERENCE_METHOD,
    reps: int = DEFAULT_REPS,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One row per (env, method) with the :data:`SUMMARY_COLUMNS` (SPEC B6).

    - Final success = the last curve point of each run (``final_success_rate``); median, mean
      and IQM over seeds, the IQM with a 95% stratified-bootstrap interval (one task per env,
      so the strata are trivial and this is the percentile bootstrap over seeds).
    - Episodes to reach each threshold: per seed the first evaluation at or above it
      (:func:`benchmarks.stats.episodes_to_reach`), then the median over seeds counting a seed
      that never reached it as +∞ (``None`` when that median is infinite); ``seeds_reached_*``
      counts the seeds that did.
    - ``poi_reference_over_method``: P(reference final success > this method's) over seeds,
      with a bootstrap interval, when the reference method ran on the same env.
    """
    rows = []
    for (env, method), members in sorted(_group(runs).items()):
        rng = np.random.default_rng(seed)
        finals = np.array([m["final_success_rate"] for m in members], dtype=np.float64)
        estimate, low, high = stratified_bootstrap_ci(finals[:, None], iqm, reps, confidence, rng)
        row: dict[str, Any] = {
            "env": env,
            "method": method,
            "privileged": bool(members[0]["privileged"]),
            "n_seeds": len(members),
            "seeds": " ".join(str(m["seed"]) for m in members),
            "final_success_median": float(np.median(finals)),
            "final_success_mean": float(np.mean(finals)),
            "final_success_iqm": estimate,
            "final_success_iqm_ci_low": low,
            "final_success_iqm_ci_high": high,
        }
        for threshold in THRESHOLDS:
            reached = [
                episodes_to_reach(
                    [p["episodes"] for p in m["curve"]], [p["success_rate"] for p in m["curve"]], threshold
                )
                for m in members
            ]
            label = round(100 * threshold)
            row[f"episodes_to_{label}_median"] = _median_with_misses(reached)
            row[f"seeds_reached_{label}"] = sum(r is not None for r in reached)
        row["train_episodes_median"] = float(np.median([m["curve"][-1]["episodes"] for m in members]))
        row["env_steps_median"] = float(np.median([m["curve"][-1]["env_steps"] for m in members]))
        row["wall_s_median"] = float(np.median([m["curve"][-1]["wall_s"] for m in members]))
        row.update({"poi_reference": None, "poi_reference_over_method": None, "poi_ci_low": None, "poi_ci_high": None})
        reference = [r for r in runs if r["env"] == env and r["method"] == reference_method]
        if reference and method != reference_method:
            ref_finals = np.array([r["final_success_rate"] for r in reference], dtype=np.float64)
            poi, poi_low, poi_high = probability_of_improvement_ci(
                ref_finals[:, None], finals[:, None], reps, confidence, np.random.default_rng(seed)
            )
            row["poi_reference"] = reference_method
            row["poi_reference_over_method"], row["poi_ci_low"], row["poi_ci_high"] = poi, poi_low, poi_high
        rows.append(row)
    for row in rows:  # normalised by the env's expert run, as the paper does for the ant (SPEC A§2.3)
        expert = [r for r in rows if r["env"] == row["env"] and r["method"] == EXPERT_METHOD]
        usable = expert and expert[0]["final_success_median"] > 0 and row["method"] != EXPERT_METHOD
        row["final_success_normalised_median"] = (
            row["final_success_median"] / expert[0]["final_success_median"] if usable else None
        )
    return rows


def _csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(SUMMARY_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row[k] is None else row[k]) for k in SUMMARY_COLUMNS})
    return buffer.getvalue()


def _fmt_rate(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _fmt_episodes(value: float | None) -> str:
    return NOT_REACHED if value is None else f"{value:.0f}"


def _caveats(
    runs: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]], preset_name: str | None, reference: str
) -> list[str]:
    eval_sizes = sorted({str(r["config"].get("eval_episodes")) for r in runs if "eval_episodes" in r["config"]})
    seeds = sorted({row["n_seeds"] for row in rows})
    batch_methods = sorted({r["method"] for r in runs if "batch_episodes" in r["config"]})
    batch_sizes = sorted({str(r["config"]["batch_episodes"]) for r in runs if "batch_episodes" in r["config"]})
    caveats = [
        "Generated from `runs/*.json` by `benchmarks/reporting.py`; do not edit by hand.",
        "Success rates are estimated from a finite number of evaluation episodes per point"
        + (f" ({', '.join(eval_sizes)} here)" if eval_sizes else "")
        + ", so each carries binomial noise; final success is the last evaluation of each run.",
        *(["Methods trained with the critic-free RL of SPEC A§6 (" + ", ".join(batch_methods) + ") report the success "
           "of each training batch of their stochastic policy (batch sizes " + ", ".join(batch_sizes) + "), as the "
           "paper's curves do; they have no separate evaluation episodes."] if batch_methods else []),
        f"Seeds per method: {', '.join(map(str, seeds))}. IQM and its 95% stratified-bootstrap interval are over "
        "seeds (one task per env); with fewer than about 5 seeds the intervals are not trustworthy.",
        "\"Episodes to reach\" is the first evaluation at or above the threshold (resolution = the evaluation "
        "interval), medianed over seeds with seeds that never reach it counted as infinite.",
        "Methods marked **privileged** observe the task progress through `PrivilegedProgressWrapper` "
        "(SPEC B2), which the paper's agents never see; compare them with faithful methods only as an upper "
        "reference.",
        "Training budgets are in training episodes; compare methods only where `train episodes` match.",
        "`wall s` is each run's training time up to its last curve point, summed over the processes of a resumed "
        "run (the SB3 baselines exclude evaluation). One-off work shared by several runs (the pipeline methods' "
        "datasets, base model, metacontroller or CompILE model) is not in it; newer pipeline runs record their "
        "process's time getting it as `shared_setup_s` in their config.",
    ]
    if any(r["method"] == EXPERT_METHOD for r in runs):
        caveats.append(f"`{EXPERT_METHOD}` is the data-generating expert (it plans with the task: privileged), evaluated "
                       "without training; \"÷ expert\" divides a method's median final success by the expert's, as the "
                       "paper normalises ant success by its expert's (SPEC A§2.3).")
    if not any(r["method"] == reference for r in runs):
        caveats.append(f"Reference method `{reference}` has no runs here, so no probability of improvement is shown.")
    if preset_name == "smoke":
        caveats.insert(1, "**Smoke preset**: tiny budgets that prove the wiring; these numbers are not results.")
    elif preset_name:
        caveats.insert(1, f"Preset: `{preset_name}` (see manifest.json for the exact command and versions).")
    return caveats


def _shared_build_line(runs: Sequence[Mapping[str, Any]]) -> str | None:
    """One sentence naming the shared artifacts' training-loop times that the env's runs record in
    ``config["shared_build_s"]`` (a range where runs of several builds disagree), or None."""
    seconds: dict[str, set[float]] = {}
    for run in runs:
        build_s = run["config"].get("shared_build_s")
        if not isinstance(build_s, Mapping):
            continue
        for name, value in build_s.items():
            if _is_number(value):
                seconds.setdefault(str(name), set()).add(float(value))
    if not seconds:
        return None
    parts = [
        f"`{name}` {min(values):,.0f}" + (f"–{max(values):,.0f}" if max(values) > min(values) else "") + " s"
        for name, values in sorted(seconds.items())
    ]
    return ("Shared artifacts, built once and used by several runs (training-loop time, not in `wall s`; "
            "from the runs that record it): " + ", ".join(parts) + ".")


def _markdown(
    runs: Sequence[Mapping[str, Any]],
    rows: Sequence[Mapping[str, Any]],
    plots: Mapping[str, list[Path]],
    preset_name: str | None,
    reference: str,
) -> str:
    lines = ["# Benchmark summary", "", "## Caveats", ""]
    lines += [f"- {caveat}" for caveat in _caveats(runs, rows, preset_name, reference)]
    for env in sorted({row["env"] for row in rows}):
        env_rows = [row for row in rows if row["env"] == env]
        normalised = any(row["final_success_normalised_median"] is not None for row in env_rows)
        lines += [
            "",
            f"## {env}",
            "",
            "| method | observation | seeds | final success (median) | "
            + ("÷ expert | " if normalised else "")
            + "final success IQM [95% CI] | "
            + "".join(f"episodes to {round(100 * t)}% | " for t in THRESHOLDS)
            + "train episodes | wall s (median) |",
            "|---|---|---:|---:|" + ("---:|" if normalised else "") + "---|" + "---:|" * len(THRESHOLDS) + "---:|---:|",
        ]
        for row in env_rows:
            ratio = f"{_fmt_rate(row['final_success_normalised_median'])} | " if normalised else ""
            lines.append(
                f"| {row['method']} | {'privileged' if row['privileged'] else 'faithful'} | {row['n_seeds']} | "
                f"{_fmt_rate(row['final_success_median'])} | {ratio}{_fmt_rate(row['final_success_iqm'])} "
                f"[{_fmt_rate(row['final_success_iqm_ci_low'])}, {_fmt_rate(row['final_success_iqm_ci_high'])}] | "
                + "".join(f"{_fmt_episodes(row[f'episodes_to_{round(100 * t)}_median'])} | " for t in THRESHOLDS)
                + f"{row['train_episodes_median']:.0f} | {row['wall_s_median']:.1f} |"
            )
        shared = _shared_build_line([run for run in runs if run["env"] == env])
        if shared:
            lines += ["", shared]
        poi_rows = [row for row in env_rows if row["poi_reference_over_method"] is not None]
        if poi_rows:
            lines += [
                "",
                f"Probability that `{reference}` has a higher final success than each method "
                "(P(X > Y) + ½ P(X = Y) over seed pairs, 95% bootstrap CI):",
                "",
                "| comparison | probability of improvement [95% CI] |",
                "|---|---|",
            ]
            for row in poi_rows:
                lines.append(
                    f"| {reference} > {row['method']} | {row['poi_reference_over_method']:.3f} "
                    f"[{row['poi_ci_low']:.3f}, {row['poi_ci_high']:.3f}] |"
                )
        for plot in plots.get(env, []):
            lines += ["", f"![{env} learning curves]({plot.name})"]
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------- plots
def _plot_env(
    env: str, runs: Sequence[Mapping[str, Any]], path: Path, log_x: bool, reps: int, confidence: float, seed: int
) -> Path | None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.0, 4.5), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    colors = [f"C{i}" for i in range(10)]
    drawn = 0
    for index, ((_, method), members) in enumerate(sorted(_group([r for r in runs if r["env"] == env]).items())):
        curves = []
        for member in members:
            xs = np.array([p["episodes"] for p in member["curve"]], dtype=np.float64)
            ys = np.array([p["success_rate"] for p in member["curve"]], dtype=np.float64)
            if log_x:
                xs, ys = xs[xs > 0], ys[xs > 0]
            if xs.size:
                curves.append((xs, ys))
        if not curves:
            continue
        band = bootstrap_curve_band(
            curves, center="median", reps=reps, confidence=confidence, rng=np.random.default_rng(seed)
        )
        privileged = bool(members[0]["privileged"])
        label = f"{method}{' (privileged)' if privileged else ''} (n={len(members)})"
        color = colors[index % len(colors)]
        linestyle = "--" if privileged else "-"
        axes.plot(band["x"], band["center"], color=color, linestyle=linestyle, marker=".", label=label)
        axes.fill_between(band["x"], band["low"], band["high"], color=color, alpha=0.2, linewidth=0)
        drawn += 1
    if drawn == 0:
        return None
    if log_x:
        axes.set_xscale("log")
    axes.set_ylim(-0.02, 1.02)
    axes.set_xlabel("training episodes" + (" (log scale)" if log_x else ""))
    axes.set_ylabel("success rate")
    axes.set_title(f"{env}: median over seeds, shaded 95% bootstrap interval")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small", loc="best")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return write_bytes_atomic(path, buffer.getvalue())


# ------------------------------------------------------------------------- report
def write_report(
    results_dir: str | os.PathLike[str],
    reference_method: str = DEFAULT_REFERENCE_METHOD,
    reps: int = DEFAULT_REPS,
    confidence: float = DEFAULT_CONFIDENCE,
    preset_name: str | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Write summary.csv, summary.md and the learning-curve PNGs of ``results_dir`` (SPEC B6).

    ``preset_name`` (default: read from ``manifest.json`` if present) only changes the caveats.
    Returns ``{"rows": [...], "summary_csv": Path, "summary_md": Path, "plots": [Path, ...]}``.
    """
    results_dir = Path(results_dir)
    runs = load_runs(results_dir)
    if not runs:
        raise ValueError(f"{results_dir / 'runs'} holds no run JSON yet; nothing to report")
    if preset_name is None and (results_dir / "manifest.json").is_file():
        preset_name = json.loads((results_dir / "manifest.json").read_text()).get("preset_name")
    rows = summarize(runs, reference_method, reps, confidence, seed)
    plots: dict[str, list[Path]] = {}
    for env in sorted({run["env"] for run in runs}):
        for log_x, suffix in ((False, ""), (True, "_logx")):
            path = results_dir / f"learning_curves_{env}{suffix}.png"
            plot = _plot_env(env, runs, path, log_x, reps, confidence, seed)
            if plot is not None:
                plots.setdefault(env, []).append(plot)
    summary_csv = write_text_atomic(results_dir / "summary.csv", _csv_text(rows))
    markdown = _markdown(runs, rows, plots, preset_name, reference_method)
    summary_md = write_text_atomic(results_dir / "summary.md", markdown)
    return {
        "rows": rows,
        "summary_csv": summary_csv,
        "summary_md": summary_md,
        "plots": [p for env_plots in plots.values() for p in env_plots],
    }


# ----------------------------------------------------------------------- manifest
def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in VERSION_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def _git_state(repo_dir: Path) -> dict[str, Any]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo_dir, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain"], cwd=repo_dir, capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit or None, "dirty": bool(status.strip())}


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value))
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def write_manifest(
    out_dir: str | os.PathLike[str], command: str | Sequence[str], preset: Any, wall_s: float
) -> Path:
    """Record how ``out_dir`` was produced: ``manifest.json`` (SPEC B6).

    Holds the command, the preset (a dataclass, mapping or name), the versions of Python and
    :data:`VERSION_PACKAGES`, the git commit of this checkout and whether it had uncommitted
    changes, the machine (platform, CPU and its vector units), and the wall time of this invocation. Earlier invocations of a
    resumed folder are kept under ``"history"`` (their command, preset name, wall time, date).
    """
    if not _is_number(wall_s) or wall_s < 0:
        raise ValueError(f"wall_s must be a non-negative number of seconds, got {wall_s!r}")
    out_dir = Path(out_dir)
    path = out_dir / "manifest.json"
    history: list[Any] = []
    if path.is_file():
        try:
            previous = json.loads(path.read_text())
            history = list(previous.get("history", [])) + [
                {k: previous.get(k) for k in ("command", "preset_name", "wall_s", "finished_at")}
            ]
        except (json.JSONDecodeError, AttributeError):
            history = []
    preset_json = _jsonable(preset)
    if isinstance(preset, str):
        preset_name = preset
    else:
        preset_name = preset_json.get("name") if isinstance(preset_json, dict) else None
    manifest = {
        "command": command if isinstance(command, str) else " ".join(map(str, command)),
        "preset_name": preset_name,
        "preset": preset_json,
        "versions": _versions(),
        "git": _git_state(Path(__file__).resolve().parents[1]),
        "machine": {**machine_description(), "architecture": platform.machine()},
        "wall_s": float(wall_s),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "history": history,
    }
    return write_json_atomic(path, manifest)


# ---------------------------------------------------------------------------- CLI
@dataclass(frozen=True)
class ReportArgs:
    """Regenerate the tables and plots of a results folder."""

    results_dir: tyro.conf.Positional[Path]
    """Folder holding ``runs/*.json``."""
    reference: str = DEFAULT_REFERENCE_METHOD
    """Method whose probability of improvement over the others is reported."""
    reps: int = DEFAULT_REPS
    """Bootstrap replicates."""


def main(args: ReportArgs) -> dict[str, Any]:
    report = write_report(args.results_dir, args.reference, args.reps)
    print(report["summary_md"].read_text(), file=sys.stdout)
    return report


if __name__ == "__main__":
    main(tyro.cli(ReportArgs))
