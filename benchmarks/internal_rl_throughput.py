"""Internal-RL rollout throughput: KV-cached steps vs re-encoding the whole context (SPEC B4, B5).

A thin command line over :func:`agents.rollout_throughput.measure_internal_rl_throughput`.

    python benchmarks/internal_rl_throughput.py --base-model runs/grid_default/base_model/model.pt \\
        --metacontroller runs/grid_default/metacontroller/metacontroller.pt --num-envs 256
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import tyro

from agents.pretrain import load_base_model
from agents.rollout_throughput import measure_internal_rl_throughput
from agents.train_metacontroller import load_metacontroller
from agents.training_utils import set_threads, write_text_atomic


@dataclass(frozen=True)
class InternalRLThroughputConfig:
    """Command-line configuration."""

    base_model: Path
    """Pretrained base model (``model.pt``)."""
    metacontroller: Path
    """Trained metacontroller (``metacontroller.pt``)."""
    env_id: str = "HierGrid-v0"
    num_envs: int = 256
    """Envs stepped at once (the acceptance asks for at least 128)."""
    seed: int = 0
    num_threads: int = 2
    out: Path | None = None
    """Optional JSON output path."""


def main(config: InternalRLThroughputConfig) -> dict[str, Any]:
    set_threads(config.num_threads)
    base_model = load_base_model(config.base_model)
    metacontroller = load_metacontroller(config.metacontroller, base_model.config.width)
    results = measure_internal_rl_throughput(base_model, metacontroller, config.env_id, config.num_envs, config.seed)
    results["config"] = {key: str(value) for key, value in asdict(config).items()}
    for name in ("cached", "reencoding"):
        row = results[name]
        print(f"{name:>10}: {row['env_steps_per_s']:10.0f} env steps/s ({row['env_steps']} steps in {row['seconds']:.1f} s)")
    print(f"   speedup: {results['speedup']:.1f}x")
    if config.out is not None:
        write_text_atomic(config.out, json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main(tyro.cli(InternalRLThroughputConfig))
