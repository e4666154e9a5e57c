"""Batched, incremental rollouts of a (possibly steered) base model in the grid env (SPEC B5).

Episodes run in synchronous batches: every sub-env of a :class:`HierGridVectorEnv` is reset with
its own seed and stepped until all of them have ended. A sub-env that ends early is
autoreset by the vector env on its next step; its later outputs are ignored. The model runs
one timestep at a time from a KV cache (no re-encoding of the history, SPEC B4): the lower
blocks give the residual ``e_t`` at the controlled layer, a *steering* callback may rewrite it
(SPEC A§3.4, §9.2 item 9), and the upper blocks give the action logits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import hier_envs  # noqa: F401  (registers the ids)
from agents.models.transformer import CausalTransformer

Steering = Callable[[torch.Tensor, dict[str, Any], int], torch.Tensor]
"""``(residual (B, W), infos of the current observation, t) -> rewritten residual (B, W)``."""


@dataclass
class RolloutStats:
    """Per-episode outcomes of a batch of rollouts."""

    success: np.ndarray
    """``(N,)`` bool."""
    lengths: np.ndarray
    """``(N,)`` int: steps until the episode ended."""
    colors_visited: np.ndarray
    """``(N,)`` int: progress reached along the task."""

    @property
    def success_rate(self) -> float:
        return float(self.success.mean())

    @staticmethod
    def concatenate(parts: list[RolloutStats]) -> RolloutStats:
        return RolloutStats(*(np.concatenate([getattr(p, name) for p in parts]) for name in ("success", "lengths", "colors_visited")))


def make_grid_vector_env(env_id: str, num_envs: int) -> gym.vector.VectorEnv:
    """The batched grid env for ``env_id`` (its ``vector_entry_point``)."""
    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point")


@torch.no_grad()
def rollout_batch(
    model: CausalTransformer,
    envs: gym.vector.VectorEnv,
    seed: int,
    generator: torch.Generator,
    steering: Steering | None = None,
    controlled_layer: int | None = None,
    greedy: bool = False,
) -> RolloutStats:
    """Run one synchronous episode per sub-env; actions are sampled from the model's policy."""
    layer = model.config.controlled_layer if controlled_layer is None else controlled_layer
    n_envs = envs.num_envs
    max_steps = envs.unwrapped.max_steps
    obs, infos = envs.reset(seed=seed)
    cache = model.init_cache(n_envs, max_steps + 1)
    active = np.ones(n_envs, dtype=bool)
    success = np.zeros(n_envs, dtype=bool)
    lengths = np.zeros(n_envs, dtype=np.int64)
    colors_visited = np.zeros(n_envs, dtype=np.int64)
    for t in range(max_steps):
        residual = model.step_lower(torch.from_numpy(obs), cache, layer)  # (B, W)
        if steering is not None:
            residual = steering(residual, infos, t)
        logits = model.step_upper(residual, cache, layer).action_logits  # (B, A)
        if greedy:
            actions = logits.argmax(-1)
        else:
            actions = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator).squeeze(-1)
        obs, _, terminated, truncated, infos = envs.step(actions.numpy())
        ended = active & (terminated | truncated)
        success[ended] = infos["success"][ended]
        colors_visited[ended] = infos["colors_visited"][ended]
        lengths[ended] = t + 1
        active &= ~ended
        if not active.any():
            break
    return RolloutStats(success, lengths, colors_visited)


def evaluate_policy(
    model: CausalTransformer,
    env_id: str,
    n_episodes: int,
    seed: int,
    batch_envs: int = 250,
    steering_factory: Callable[[], Steering] | None = None,
    controlled_layer: int | None = None,
) -> RolloutStats:
    """Success of the (steered) base model over ``n_episodes`` episodes, in batches.

    Batch ``k`` resets its sub-envs with seeds ``seed + k * batch_envs + i``, so every episode
    has its own layout and the result is a function of ``seed``.
    """
    if n_episodes < 1 or batch_envs < 1:
        raise ValueError(f"n_episodes and batch_envs must be >= 1, got {n_episodes}, {batch_envs}")
    generator = torch.Generator().manual_seed(seed)
    parts = []
    done = 0
    while done < n_episodes:
        size = min(batch_envs, n_episodes - done)
        envs = make_grid_vector_env(env_id, size)
        steering = steering_factory() if steering_factory is not None else None
        parts.append(rollout_batch(model, envs, seed + done, generator, steering, controlled_layer))
        envs.close()
        done += size
    return RolloutStats.concatenate(parts)
