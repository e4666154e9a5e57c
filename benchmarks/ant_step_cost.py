"""Step cost of ``HierAntEnv`` against Gymnasium's raw ``Ant-v5`` (SPEC §9.2 item 13, B5).

Both envs are unwrapped, step the same MuJoCo ant with the same frame skip (5 × 0.01 s) and get
uniformly random actions in [-1, 1] drawn before timing. Only ``step()`` calls are timed;
resets after an episode ends (random actions topple the ant every ~100 steps in both envs)
happen outside the clock. The three envs are measured in interleaved rounds, so a background
load affects them alike, and the median over rounds is reported. Ant-v5 is measured twice:
with its default 105-dim observation (contact forces, which cost an extra
``mj_rnePostConstraint`` per step) and with ``include_cfrc_ext_in_observation=False`` (27 dims,
the proprioception HierAnt uses). The overhead is HierAnt's time per step relative to each.

    python benchmarks/ant_step_cost.py --seconds 2 --rounds 3 --out results/ant_step_cost.json

Needs Gymnasium's MuJoCo extra for Ant-v5 (``pip install "gymnasium[mujoco]"``, i.e. imageio).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/ant_step_cost.py`: make `import benchmarks` work
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import statistics
import time
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
import tyro

from benchmarks.timing_report import markdown_table, provenance, publish_report
from hier_envs.ant import HierAntEnv

ACTION_CHUNK = 4096
"""Pre-drawn random actions per env (cycled)."""
MAX_OVERHEAD = 0.30
"""Allowed extra time per step of HierAnt over raw Ant-v5 (the issue's budget)."""


@dataclass(frozen=True)
class AntStepCostConfig:
    """Command-line configuration of the ant step-cost benchmark."""

    seconds: float = 2.0
    """Timed step() seconds per env per round."""
    rounds: int = 3
    """Interleaved measurement rounds; the median is reported."""
    frame_skip: int = 5
    """MuJoCo steps per env step, the same for both envs (Ant-v5's default)."""
    seed: int = 0
    """Seed of the envs and of the pre-drawn actions."""
    out: Path | None = None
    """Optional JSON file for the results (parent folders are created)."""


def _time_steps(env: Any, actions: np.ndarray, seconds: float, seed: int) -> tuple[int, float]:
    """Step ``env`` for about ``seconds`` of step() time; returns (steps, step seconds)."""
    env.reset(seed=seed)
    steps, elapsed, position = 0, 0.0, 0
    clock = time.perf_counter
    while elapsed < seconds:
        for _ in range(200):
            start = clock()
            _, _, terminated, truncated, _ = env.step(actions[position])
            elapsed += clock() - start
            steps += 1
            position = (position + 1) % len(actions)
            if terminated or truncated:
                env.reset()
    return steps, elapsed


def make_envs(frame_skip: int) -> dict[str, Any]:
    """The three unwrapped envs under comparison, by label."""
    return {
        "HierAnt": HierAntEnv(frame_skip=frame_skip),
        "Ant-v5 (default, 105-dim obs)": gym.make("Ant-v5", frame_skip=frame_skip).unwrapped,
        "Ant-v5 (27-dim obs, no contact forces)": gym.make(
            "Ant-v5", frame_skip=frame_skip, include_cfrc_ext_in_observation=False
        ).unwrapped,
    }


def measure_step_cost(seconds: float = 2.0, rounds: int = 3, frame_skip: int = 5, seed: int = 0) -> dict[str, Any]:
    """Steps per second of each env (median over interleaved rounds) and HierAnt's overheads."""
    if seconds <= 0 or rounds < 1 or frame_skip < 1:
        raise ValueError(f"need seconds > 0, rounds >= 1, frame_skip >= 1; got {seconds!r}, {rounds!r}, {frame_skip!r}")
    envs = make_envs(frame_skip)
    actions = np.random.default_rng(seed).uniform(-1.0, 1.0, size=(ACTION_CHUNK, 8)).astype(np.float32)
    rates: dict[str, list[float]] = {label: [] for label in envs}
    for env in envs.values():  # warm-up
        _time_steps(env, actions, min(0.3, seconds / 4), seed)
    for _ in range(rounds):
        for label, env in envs.items():
            steps, elapsed = _time_steps(env, actions, seconds, seed)
            rates[label].append(steps / elapsed)
    for env in envs.values():
        env.close()
    results = {label: {"steps_per_s": statistics.median(r), "rounds": r} for label, r in rates.items()}
    hier = results["HierAnt"]["steps_per_s"]
    overheads = {label: r["steps_per_s"] / hier - 1.0 for label, r in results.items() if label != "HierAnt"}
    return {
        "frame_skip": frame_skip,
        "seconds": seconds,
        "rounds": rounds,
        "seed": seed,
        "results": results,
        "overhead_vs": overheads,
        "max_overhead": MAX_OVERHEAD,
        "within_budget": all(o <= MAX_OVERHEAD for o in overheads.values()),
        **provenance(mujoco=mujoco.__version__),
    }


def format_table(report: dict[str, Any]) -> str:
    """A small Markdown table of the results."""
    rows = []
    for label, result in report["results"].items():
        overhead = report["overhead_vs"].get(label)
        rows.append([label, f"{result['steps_per_s']:,.0f}", "—" if overhead is None else f"{overhead:+.1%}"])
    verdict = "within" if report["within_budget"] else "OVER"
    return markdown_table(
        f"Unwrapped env steps per second, random actions, frame_skip={report['frame_skip']} "
        f"(median of {report['rounds']} rounds of {report['seconds']} s)",
        ["env", "steps/s", "HierAnt time per step vs this"], rows,
        f"HierAnt overhead {verdict} the {report['max_overhead']:.0%} budget.",
    )


def main(config: AntStepCostConfig) -> dict[str, Any]:
    report = measure_step_cost(config.seconds, config.rounds, config.frame_skip, config.seed)
    return publish_report(report, config, format_table)


if __name__ == "__main__":
    main(tyro.cli(AntStepCostConfig))
