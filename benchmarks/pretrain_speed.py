"""Pretraining speed per precision: optimiser steps per second of :func:`agents.pretrain.pretrain`
under ``precision="float32"`` and ``"bfloat16"`` (autocast), same data, same preset.

Why: ``bfloat16`` buys more pretraining steps for the same time where the hardware has bfloat16
units, and the grid backbone's controllability grows with steps (SPEC A§4.2, Fig. A2). The rounds
alternate the precisions so that drift in the machine's speed hits both alike.

    python benchmarks/pretrain_speed.py --out results/pretrain_speed.json
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/pretrain_speed.py`: make `import benchmarks` work
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dataclasses
import statistics
import tempfile
from dataclasses import dataclass
from typing import Any

import torch
import tyro

from agents.base_model_study import DATA_PRESETS
from agents.pretrain import PRECISIONS, PRETRAIN_PRESETS, pretrain
from agents.training_utils import CsvLog, check_positive_ints
from benchmarks.timing_report import markdown_table, provenance, publish_report
from hier_envs.datasets import generate_grid_dataset


@dataclass(frozen=True)
class PretrainSpeedConfig:
    """Command-line configuration."""

    preset: str = "default"
    """Grid pretraining preset whose model, batch and threads are timed."""
    steps: int = 150
    """Timed optimiser steps per round and precision."""
    rounds: int = 2
    """Rounds; each times every precision once, in alternating order."""
    episodes: int = 20_000
    """Episodes of the generated D (the study's ε and seed, fewer episodes: batches draw the same lengths)."""
    out: Path | None = None
    """Optional JSON output path."""


def time_pretraining(config: PretrainSpeedConfig) -> dict[str, Any]:
    """Steps per second of each precision, per round (the trainer's own ``elapsed_s``)."""
    if config.preset not in PRETRAIN_PRESETS:
        raise ValueError(f"unknown grid pretraining preset {config.preset!r}; expected one of {sorted(PRETRAIN_PRESETS)}")
    check_positive_ints(config, ("steps", "rounds", "episodes"))
    data_config = DATA_PRESETS["default"]
    dataset = generate_grid_dataset(config.episodes, data_config.d_epsilon, data_config.seed, progress=False)
    base = dataclasses.replace(PRETRAIN_PRESETS[config.preset], train_steps=config.steps, eval_every=config.steps,
                               checkpoint_every=config.steps, snapshot_steps=(), val_max_episodes=64)
    rounds = []
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(config.rounds):
            order = PRECISIONS if index % 2 == 0 else PRECISIONS[::-1]
            row = {}
            for precision in order:
                run_dir = Path(scratch) / f"round{index}_{precision}"
                pretrain(dataclasses.replace(base, precision=precision), dataset, run_dir, progress=False)
                last = CsvLog(run_dir / "metrics.csv", ["step"]).read()[-1]
                row[precision] = {"steps_per_s": config.steps / float(last["elapsed_s"]),
                                  "elapsed_s": float(last["elapsed_s"]),
                                  "val_action_nll": float(last["val_action_nll"])}
            rounds.append(row)
    median = {precision: statistics.median(r[precision]["steps_per_s"] for r in rounds) for precision in PRECISIONS}
    report = {
        "preset": config.preset, "steps_per_round": config.steps, "batch_size": base.batch_size,
        "num_threads": base.num_threads, "dataset_episodes": config.episodes, "rounds": rounds,
        "median_steps_per_s": median, "speedup_bfloat16": median["bfloat16"] / median["float32"],
        **provenance(torch=torch.__version__),
    }
    # the bfloat16 units among the CPU's vector flags (machine_description reads /proc/cpuinfo)
    report["cpu_bf16_flags"] = [flag for flag in report["machine"]["cpu_vector_flags"]
                                if "bf16" in flag or flag.startswith("amx")]
    return report


def format_table(report: dict[str, Any]) -> str:
    """A small Markdown table of the median rates."""
    rows = [[precision, f"{rate:.2f}"] for precision, rate in report["median_steps_per_s"].items()]
    return markdown_table(
        f"grid `{report['preset']}` pretraining, batch {report['batch_size']}, {report['num_threads']} threads "
        f"(median of {len(report['rounds'])} rounds)",
        ["precision", "steps/s"], rows, f"bfloat16 speed-up: {report['speedup_bfloat16']:.2f}x",
    )


def main(config: PretrainSpeedConfig) -> dict[str, Any]:
    return publish_report(time_pretraining(config), config, format_table)


if __name__ == "__main__":
    main(tyro.cli(PretrainSpeedConfig))
