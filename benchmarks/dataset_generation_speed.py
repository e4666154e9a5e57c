"""Wall time of generating the expert datasets (``hier_envs.datasets``; SPEC A§2.3, B3).

Why: every base-model study starts by generating D and D*, and the ant's expert is slow and
imperfect (failed episodes are discarded and regenerated), so its datasets cost real time. Each
entry generates one dataset exactly as ``python -m hier_envs.datasets`` does and records what its
metadata says: episodes kept, failures discarded, steps and the generator's own wall time.

    python benchmarks/dataset_generation_speed.py --out results/dataset_generation_speed.json
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/dataset_generation_speed.py`: make `import benchmarks` work
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dataclasses import dataclass
from typing import Any

import tyro

from agents.training_utils import check_non_negative_ints, check_numbers
from benchmarks.timing_report import markdown_table, provenance, publish_report
from hier_envs.datasets import EpisodeDataset, generate_ant_dataset, generate_grid_dataset

KINDS = ("grid", "ant_sampled", "ant_mean")
"""``grid`` (ε-greedy grid expert), ``ant_sampled`` (the ant's D: sampled torques) and
``ant_mean`` (its D*: mean torques)."""


@dataclass(frozen=True)
class DatasetGenerationSpeedConfig:
    """Command-line configuration."""

    datasets: tuple[str, ...] = ("ant_sampled:500", "ant_mean:200", "grid:10000")
    """``kind:episodes`` entries, kind in :data:`KINDS`."""
    grid_epsilon: float = 0.0
    """Expert noise of the ``grid`` entries (0: D*)."""
    seed: int = 0
    out: Path | None = None
    """Optional JSON output path."""


def _parse(entry: str) -> tuple[str, int]:
    """``"kind:episodes"`` -> ``(kind, episodes)``; ``ValueError`` naming the entry otherwise."""
    kind, _, episodes = entry.partition(":")
    if kind not in KINDS or not episodes.isdigit() or int(episodes) < 1:
        raise ValueError(f"dataset entry {entry!r} must be 'kind:episodes' with kind in {KINDS} and episodes >= 1")
    return kind, int(episodes)


def generate(kind: str, episodes: int, config: DatasetGenerationSpeedConfig) -> EpisodeDataset:
    """One dataset, generated as ``python -m hier_envs.datasets`` generates it (successes only)."""
    if kind == "grid":
        return generate_grid_dataset(episodes, config.grid_epsilon, config.seed, progress=False)
    return generate_ant_dataset(episodes, kind == "ant_sampled", config.seed, progress=False)


def time_generation(config: DatasetGenerationSpeedConfig) -> dict[str, Any]:
    """Each entry's counts and the generator's own wall time, read from the dataset's metadata."""
    if not config.datasets:
        raise ValueError("DatasetGenerationSpeedConfig.datasets is empty; name at least one 'kind:episodes'")
    entries = [_parse(entry) for entry in config.datasets]
    check_non_negative_ints(config, ("seed",))
    check_numbers(config, {"grid_epsilon": "[0, 1]"})
    rows = []
    for kind, episodes in entries:
        dataset = generate(kind, episodes, config)
        counts, seconds = dataset.metadata["counts"], dataset.metadata["generation_seconds"]
        rows.append({
            "kind": kind, "env_id": dataset.metadata["env_id"], "episodes": counts["episodes"],
            "discarded_failures": counts["discarded_failures"], "steps": counts["steps"],
            "generation_s": seconds, "steps_per_s": counts["steps"] / seconds if seconds > 0 else None,
            "sha256": dataset.sha256,
        })
    return {"datasets": rows, **provenance()}


def format_table(report: dict[str, Any]) -> str:
    """The printed summary: one row per dataset."""
    rows = [[f"{r['kind']} ({r['env_id']})", str(r["episodes"]), str(r["discarded_failures"]), f"{r['steps']:,}",
             f"{r['generation_s']:.1f}"] for r in report["datasets"]]
    return markdown_table("expert dataset generation", ["dataset", "episodes", "discarded", "steps", "seconds"], rows)


def main(config: DatasetGenerationSpeedConfig) -> dict[str, Any]:
    return publish_report(time_generation(config), config, format_table)


if __name__ == "__main__":
    main(tyro.cli(DatasetGenerationSpeedConfig))
