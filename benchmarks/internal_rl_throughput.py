"""Internal-RL rollout throughput: KV-cached steps vs re-encoding the whole context (SPEC B4, B5).

A command line over :func:`agents.rollout_throughput.measure_internal_rl_throughput`: the same
batch of episodes is collected with each base-model stepper, and the report (with the versions,
machine and command of :mod:`benchmarks.timing_report`) is printed and optionally written.

    python benchmarks/internal_rl_throughput.py --base-model runs/grid_default/base_model/model.pt \\
        --metacontroller runs/grid_default/metacontroller/metacontroller.pt --num-envs 256 \\
        --out results/internal_rl_throughput.json
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/internal_rl_throughput.py`: make `import benchmarks` work
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dataclasses import dataclass
from typing import Any

import torch
import tyro

from agents.pretrain import load_base_model
from agents.rollout_throughput import measure_internal_rl_throughput
from agents.train_metacontroller import load_metacontroller
from agents.training_utils import set_threads
from benchmarks.timing_report import markdown_table, provenance, publish_report


@dataclass(frozen=True)
class InternalRLThroughputConfig:
    """Command-line configuration."""

    base_model: Path
    """Pretrained base model (``model.pt``)."""
    metacontroller: Path
    """Trained metacontroller (``metacontroller.pt``) for that base model."""
    env_id: str = "HierGrid-v0"
    num_envs: int = 256
    """Envs stepped at once (the acceptance asks for at least 128)."""
    seed: int = 0
    num_threads: int = 2
    out: Path | None = None
    """Optional JSON output path (written atomically)."""


def format_table(report: dict[str, Any]) -> str:
    """A small Markdown table of the two steppers and their ratio."""
    labels = {"cached": "KV cache, one step", "reencoding": "re-encode the whole context"}
    rows = [[label, f"{report[name]['env_steps']:,}", f"{report[name]['seconds']:.1f}", f"{report[name]['env_steps_per_s']:,.0f}"]
            for name, label in labels.items()]
    return markdown_table(
        f"{report['env_id']}: internal-RL env steps per second, {report['num_envs']} envs, {report['threads']} threads",
        ["base-model stepper", "env steps", "seconds", "env steps/s"], rows,
        f"KV-cached rollouts are {report['speedup']:.1f}x faster.",
    )


def main(config: InternalRLThroughputConfig) -> dict[str, Any]:
    set_threads(config.num_threads)  # refuses num_threads < 1; the batched env refuses num_envs < 1
    base_model = load_base_model(config.base_model)
    metacontroller = load_metacontroller(config.metacontroller, base_model.config.width,
                                         base_model.config.controlled_layer)
    report = measure_internal_rl_throughput(base_model, metacontroller, config.env_id, config.num_envs, config.seed)
    report.update(provenance(torch=torch.__version__))
    return publish_report(report, config, format_table)


if __name__ == "__main__":
    main(tyro.cli(InternalRLThroughputConfig))
