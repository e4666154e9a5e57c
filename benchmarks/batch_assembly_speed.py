"""How fast pretraining's padded batches are assembled on the CPU, with and without the
prefetching threads (``EpisodeDataset.padded_batch``, ``agents.pretrain.BatchPrefetcher``; SPEC B5).

Why: at a GPU's batch of 1,024 episodes (SPEC A§3.2, Table A4) the model step is short, and a
device that waits for the CPU to assemble the next padded batch idles. This times
``padded_batch`` alone at the CPU ``default`` batch (128) and at the paper's (1,024), drawing
batches as pretraining does (length buckets), and then :class:`~agents.pretrain.BatchPrefetcher`
consumed as fast as it delivers (no model step in between: the worst case for the prefetcher)
with 0 (no threads, the CPU default), 2 and 4 workers.

    python benchmarks/batch_assembly_speed.py --out results/batch_assembly_speed.json
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/batch_assembly_speed.py`: make `import benchmarks` work
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import statistics
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import tyro

from agents.base_model_study import DATA_PRESETS
from agents.pretrain import PRETRAIN_PRESETS, BatchPrefetcher, LengthBucketSampler
from agents.training_utils import check_non_negative_ints, check_positive_ints, set_threads
from benchmarks.timing_report import markdown_table, provenance, publish_report
from hier_envs.datasets import generate_grid_dataset


@dataclass(frozen=True)
class BatchAssemblySpeedConfig:
    """Command-line configuration."""

    episodes: int = 20_000
    """Episodes of the generated D (the ``default`` study's ε and seed; batches draw the same lengths)."""
    batch_sizes: tuple[int, ...] = (128, 1024)
    """Batch sizes timed for ``padded_batch``."""
    prefetch_batch_size: int = 1024
    prefetch_depths: tuple[int, ...] = (0, 2, 4)
    """Worker threads of ``BatchPrefetcher`` (0: assembled in the calling thread)."""
    batches: int = 40
    """Batches timed per measurement, after 3 warm-up batches (plus one per prefetching worker, so
    the batches the workers had ready at the start are not timed as free)."""
    rounds: int = 3
    seed: int = 0
    out: Path | None = None
    """Optional JSON output path."""


def _check(config: BatchAssemblySpeedConfig) -> None:
    check_positive_ints(config, ("episodes", "prefetch_batch_size", "batches", "rounds"))
    check_non_negative_ints(config, ("seed",))
    if not config.batch_sizes or any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in config.batch_sizes):
        raise ValueError(f"BatchAssemblySpeedConfig.batch_sizes must be ints >= 1, got {config.batch_sizes!r}")
    if not config.prefetch_depths or any(isinstance(d, bool) or not isinstance(d, int) or d < 0
                                         for d in config.prefetch_depths):
        raise ValueError(f"BatchAssemblySpeedConfig.prefetch_depths must be ints >= 0, got {config.prefetch_depths!r}")


def time_batch_assembly(config: BatchAssemblySpeedConfig) -> dict[str, Any]:
    """Median seconds per batch of ``padded_batch`` per batch size, and of the prefetcher per depth."""
    _check(config)
    data_config = DATA_PRESETS["default"]
    dataset = generate_grid_dataset(config.episodes, data_config.d_epsilon, data_config.seed, progress=False)
    sampler = LengthBucketSampler(np.arange(dataset.n_episodes), dataset.episode_lengths,
                                  PRETRAIN_PRESETS["default"].length_buckets)
    set_threads(1)  # pretraining's tensors are built by numpy; torch only wraps them

    def padded_seconds(batch_size: int, rng: np.random.Generator) -> float:
        draws = [sampler.sample(rng, batch_size) for _ in range(3 + config.batches)]  # drawn outside the clock
        for indices in draws[:3]:
            dataset.padded_batch(indices)
        started = time.perf_counter()
        for indices in draws[3:]:
            dataset.padded_batch(indices)
        return (time.perf_counter() - started) / config.batches

    def prefetch_seconds(depth: int, rng: np.random.Generator) -> float:
        prefetcher = BatchPrefetcher(dataset, sampler, rng, config.prefetch_batch_size, depth=depth)
        try:
            for _ in range(3 + depth):  # consumed faster than made, the queue is empty after these
                prefetcher.next()
            started = time.perf_counter()
            for _ in range(config.batches):
                prefetcher.next()
            return (time.perf_counter() - started) / config.batches
        finally:
            prefetcher.close()

    rounds = []
    for index in range(config.rounds):
        rng = np.random.default_rng([config.seed, index])
        sizes = config.batch_sizes if index % 2 == 0 else config.batch_sizes[::-1]
        depths = config.prefetch_depths if index % 2 == 0 else config.prefetch_depths[::-1]
        rounds.append({
            "padded_batch_s": {str(size): padded_seconds(size, rng) for size in sizes},
            "prefetcher_s": {str(depth): prefetch_seconds(depth, rng) for depth in depths},
        })
    return {
        "dataset_episodes": dataset.n_episodes, "dataset_steps": dataset.n_steps,
        "obs_encoding": dataset.obs_encoding, "prefetch_batch_size": config.prefetch_batch_size,
        "batches_per_measurement": config.batches, "rounds": rounds,
        "median_padded_batch_s": {str(size): statistics.median(r["padded_batch_s"][str(size)] for r in rounds)
                                  for size in config.batch_sizes},
        "median_prefetcher_s": {str(depth): statistics.median(r["prefetcher_s"][str(depth)] for r in rounds)
                                for depth in config.prefetch_depths},
        **provenance(torch=torch.__version__),
    }


def format_table(report: dict[str, Any]) -> str:
    """The printed summary: median seconds per batch of each measurement."""
    rows = [[f"padded_batch, {size} episodes", f"{seconds:.4f}"] for size, seconds in report["median_padded_batch_s"].items()]
    rows += [[f"BatchPrefetcher, {report['prefetch_batch_size']} episodes, {depth} workers", f"{seconds:.4f}"]
             for depth, seconds in report["median_prefetcher_s"].items()]
    return markdown_table(
        f"grid D ({report['dataset_episodes']} episodes), seconds per batch (median of {len(report['rounds'])} rounds "
        f"of {report['batches_per_measurement']} batches, {report['machine']['usable_cpus']} usable cores)",
        ["assembly", "s/batch"], rows,
    )


def main(config: BatchAssemblySpeedConfig) -> dict[str, Any]:
    return publish_report(time_batch_assembly(config), config, format_table)


if __name__ == "__main__":
    main(tyro.cli(BatchAssemblySpeedConfig))
