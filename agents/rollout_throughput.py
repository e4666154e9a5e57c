"""Internal-RL rollout throughput: KV-cached steps vs re-encoding the whole context (SPEC B4, B5).

Both runs collect the same batch of episodes (same seeds, same policy, same sampling stream)
through :meth:`InternalRLEnvironment.collect`; they differ only in the base-model stepper. Env
steps/s count every active env's step, including base-model inference, the switching unit,
the policy and the batched env.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from agents.internal_rl import CachedStepper, CodePolicy, InternalRLEnvironment, ReencodingStepper
from agents.metacontroller import SWITCH_THRESHOLD, Metacontroller
from agents.models.base_models import BaseModel


def measure_internal_rl_throughput(
    base_model: BaseModel, metacontroller: Metacontroller, env_id: str, num_envs: int, seed: int,
    greedy_actions: bool = False,
) -> dict[str, Any]:
    """Env steps/s of one collected batch with each stepper, and their ratio."""
    environment = InternalRLEnvironment(base_model, metacontroller, env_id, num_envs,
                                        switch_threshold=SWITCH_THRESHOLD, greedy_actions=greedy_actions)
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
