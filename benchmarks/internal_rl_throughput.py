"""Internal-RL rollout throughput: KV-cached steps vs re-encoding the whole context (SPEC B4, B5).

Both runs collect the same batch of episodes (same seeds, same policy, same sampling stream)
through :meth:`InternalRLEnvironment.collect`; they differ only in the base-model stepper. Env
steps/s count every active env's step, including base-model inference, the switching unit,
the policy and the batched env.

    python benchmarks/internal_rl_throughput.py --base-model runs/grid_default/base_model/model.pt \\
        --metacontroller runs/grid_default/metacontroller/metacontroller.pt --num-envs 256
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import tyro

from agents.internal_rl import CachedStepper, CodePolicy, InternalRLEnvironment, ReencodingStepper
from agents.metacontroller import Metacontroller
from agents.models.transformer import CausalTransformer
from agents.pretrain import load_base_model
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


def measure_internal_rl_throughput(
    base_model: CausalTransformer, metacontroller: Metacontroller, env_id: str, num_envs: int, seed: int
) -> dict[str, Any]:
    """Env steps/s of one collected batch with each stepper, and their ratio."""
    environment = InternalRLEnvironment(base_model, metacontroller, env_id, num_envs, switch_threshold=0.5)
    torch.manual_seed(seed)
    policy = CodePolicy(base_model.config.width, metacontroller.config.latent_dim, 256, 0.0)
    results: dict[str, Any] = {"env_id": env_id, "num_envs": num_envs, "threads": torch.get_num_threads()}
    environment.collect(policy, seed, torch.Generator().manual_seed(seed))  # warm-up
    for name, stepper in (
        ("cached", CachedStepper(base_model, environment.layer)),
        ("reencoding", ReencodingStepper(base_model, environment.layer)),
    ):
        tic = time.perf_counter()
        batch = environment.collect(policy, seed, torch.Generator().manual_seed(seed), stepper=stepper)
        seconds = time.perf_counter() - tic
        steps = int(batch.lengths.sum())
        results[name] = {"env_steps": steps, "seconds": seconds, "env_steps_per_s": steps / seconds,
                         "mean_episode_length": float(batch.lengths.mean())}
    results["speedup"] = results["cached"]["env_steps_per_s"] / results["reencoding"]["env_steps_per_s"]
    return results


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
