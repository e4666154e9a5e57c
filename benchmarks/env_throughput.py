"""Environment throughput: single grid env (wrapped and unwrapped) vs the batched env (SPEC B1, B5).

Measures env steps per second with uniformly random actions drawn before timing, observations
built and copied out as in real use. For the single env, one step is one ``step()`` call (resets
after an episode ends are inside the timed loop but not counted). For the batched env, one
``step()`` call is ``num_envs`` env steps; as in Gymnasium's ``SyncVectorEnv``, the NEXT_STEP
autoreset steps are counted (about 1 in 14 with random actions). Each measurement runs for
about ``seconds`` after a short warm-up.

    python benchmarks/env_throughput.py --num-envs 1024 --out results/env_throughput.json
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/env_throughput.py`: make `import benchmarks` work
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import time
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import tyro

import hier_envs  # noqa: F401  (registers the ids)
from benchmarks.timing_report import markdown_table, provenance, publish_report

ACTION_CHUNK = 4096
"""Pre-drawn actions per chunk for the single env (cycled)."""
BATCHED_ACTION_ROWS = 256
"""Pre-drawn ``(rows, num_envs)`` action batches for the batched env (cycled)."""


@dataclass(frozen=True)
class ThroughputConfig:
    """Command-line configuration of the throughput benchmark."""

    env_id: str = "HierGrid-v0"
    """Registered id to measure (any grid id with a ``vector_entry_point``)."""
    num_envs: int = 1024
    """Sub-envs in the batched env."""
    seconds: float = 3.0
    """Approximate timed duration of each of the three measurements."""
    seed: int = 0
    """Seed of the envs and of the pre-drawn actions."""
    out: Path | None = None
    """Optional JSON file for the results (parent folders are created)."""


def _time_single(env: Any, actions: list[int], seconds: float, seed: int) -> tuple[int, float]:
    """Step one env with pre-drawn actions for ~``seconds``; returns (steps, elapsed)."""
    env.reset(seed=seed)
    steps, start, position = 0, time.perf_counter(), 0
    deadline = start + seconds
    while True:
        for _ in range(1000):
            _, _, terminated, truncated, _ = env.step(actions[position])
            position = (position + 1) % len(actions)
            if terminated or truncated:
                env.reset()
        steps += 1000
        now = time.perf_counter()
        if now >= deadline:
            return steps, now - start


def _time_batched(envs: Any, actions: np.ndarray, seconds: float, seed: int) -> tuple[int, float]:
    """Step the batched env with pre-drawn action batches; returns (env steps, elapsed)."""
    envs.reset(seed=seed)
    calls, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(16):
            envs.step(actions[calls % len(actions)])
            calls += 1
        now = time.perf_counter()
        if now >= deadline:
            return calls * envs.num_envs, now - start


def measure_throughput(
    env_id: str = "HierGrid-v0", num_envs: int = 1024, seconds: float = 3.0, seed: int = 0
) -> dict[str, Any]:
    """Env steps per second of the wrapped single env, the unwrapped single env and the batched env.

    Returns a JSON-ready dict: ``results`` maps ``single_wrapped``, ``single_unwrapped`` and
    ``batched`` to ``{"steps", "seconds", "steps_per_s"}``, plus the configuration and versions.
    """
    if num_envs < 1 or seconds <= 0:
        raise ValueError(f"num_envs must be >= 1 and seconds > 0, got {num_envs!r} and {seconds!r}")
    rng = np.random.default_rng(seed)
    single_actions = rng.integers(4, size=ACTION_CHUNK).tolist()
    batched_actions = rng.integers(4, size=(BATCHED_ACTION_ROWS, num_envs))  # (rows, num_envs)
    warmup = min(0.3, seconds / 5)
    results: dict[str, dict[str, float]] = {}

    wrapped = gym.make(env_id)
    _time_single(wrapped, single_actions, warmup, seed)
    steps, elapsed = _time_single(wrapped, single_actions, seconds, seed)
    results["single_wrapped"] = {"steps": steps, "seconds": elapsed, "steps_per_s": steps / elapsed}

    unwrapped = gym.make(env_id).unwrapped
    _time_single(unwrapped, single_actions, warmup, seed)
    steps, elapsed = _time_single(unwrapped, single_actions, seconds, seed)
    results["single_unwrapped"] = {"steps": steps, "seconds": elapsed, "steps_per_s": steps / elapsed}

    batched = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point")
    _time_batched(batched, batched_actions, warmup, seed)
    steps, elapsed = _time_batched(batched, batched_actions, seconds, seed)
    results["batched"] = {"steps": steps, "seconds": elapsed, "steps_per_s": steps / elapsed}
    for env in (wrapped, unwrapped, batched):
        env.close()

    return {
        "env_id": env_id,
        "num_envs": num_envs,
        "seconds": seconds,
        "seed": seed,
        "results": results,
        **provenance(),
    }


def format_table(report: dict[str, Any]) -> str:
    """A small Markdown table of the results."""
    labels = {
        "single_wrapped": "single, gym.make",
        "single_unwrapped": "single, unwrapped",
        "batched": f"batched, num_envs={report['num_envs']}",
    }
    rows = [[label, f"{report['results'][key]['steps_per_s']:,.0f}"] for key, label in labels.items()]
    return markdown_table(f"{report['env_id']}: env steps per second (random actions, observations built)",
                          ["env", "steps/s"], rows)


def main(config: ThroughputConfig) -> dict[str, Any]:
    report = measure_throughput(config.env_id, config.num_envs, config.seconds, config.seed)
    return publish_report(report, config, format_table)


if __name__ == "__main__":
    main(tyro.cli(ThroughputConfig))
