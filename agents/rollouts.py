"""Batched, incremental rollouts of a (possibly steered) base model in a HierGrid or HierAnt env (SPEC B5).

Episodes run in synchronous batches: every sub-env of a vector env (the batched
:class:`HierGridVectorEnv` for the grid, a synchronous vector of MuJoCo envs for the ant) is reset
with its own seed and stepped until all of them have ended. A sub-env that ends early is
autoreset by the vector env on its next step; its later outputs are ignored. The model runs
one timestep at a time from its inference state (KV cache or recurrent state; no re-encoding
of the history, SPEC B4): the lower blocks give the residual ``e_t`` at the controlled layer, a
*steering* callback may rewrite it (SPEC A§3.4, §9.2 item 9), and the upper blocks give the
action distribution. Continuous actions are clipped to the env's action bounds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import hier_envs  # noqa: F401  (registers the ids)
from agents.models.base_models import BaseModel

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
    endings: np.ndarray
    """``(N,)`` str: why each episode ended, one of :data:`ENDINGS` (``"success"``, the env's
    ``info["failure"]`` (``"wrong_color"``; the ant also ``"fell"``, ``"wall"``) or ``"timeout"``),
    so a low success rate says whether the model walks the wrong way, falls or dawdles."""

    @property
    def success_rate(self) -> float:
        return float(self.success.mean())

    def ending_counts(self) -> dict[str, int]:
        """Episodes per ending, every key of :data:`ENDINGS` present (zero where none)."""
        return {ending: int((self.endings == ending).sum()) for ending in ENDINGS}

    @staticmethod
    def concatenate(parts: list[RolloutStats]) -> RolloutStats:
        names = ("success", "lengths", "colors_visited", "endings")
        return RolloutStats(*(np.concatenate([getattr(p, name) for p in parts]) for name in names))


ENDINGS: tuple[str, ...] = ("success", "wrong_color", "fell", "wall", "timeout")
"""Every value of :attr:`RolloutStats.endings`: success, the envs' failure kinds (SPEC A§2.1, §2.2:
a wrong colour; the ant's torso leaving its height range or its centre entering the wall cell),
and truncation at the horizon."""


def episode_endings(success: np.ndarray, failure: Any, truncated: np.ndarray) -> np.ndarray:
    """``(B,)`` str endings of one vector-env step (meaningful where an episode ended there):
    ``"success"``, else the info's failure kind, else ``"timeout"`` where truncated.

    ``""`` where none applies (an episode still running); a failure kind outside
    :data:`ENDINGS` raises ``ValueError`` rather than being filed under a wrong label.
    """
    failure = np.asarray(failure, dtype=object)
    endings = np.where(np.asarray(truncated, dtype=bool), "timeout", "").astype(object)
    has_failure = failure != None  # noqa: E711  (elementwise on an object array)
    endings[has_failure] = failure[has_failure]
    endings[np.asarray(success, dtype=bool)] = "success"
    endings = endings.astype(str)
    unknown = ~np.isin(endings, (*ENDINGS, ""))
    if unknown.any():
        raise ValueError(f"unknown failure kind {str(endings[unknown][0])!r} in the env's info; expected one of {ENDINGS}")
    return endings


def make_vector_env(env_id: str, num_envs: int, **env_kwargs: Any) -> gym.vector.VectorEnv:
    """Batched env for ``env_id`` through its ``vector_entry_point`` (grid: numpy batch; ant:
    :class:`hier_envs.ant_vector.HierAntVectorEnv`); ``env_kwargs`` override the registered
    keywords (e.g. ``tasks=`` for another task pool)."""
    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **env_kwargs)


def episode_horizon(envs: gym.vector.VectorEnv) -> int:
    """The sub-envs' ``max_steps`` (grid 100, ant 500)."""
    max_steps = getattr(envs.unwrapped, "max_steps", None)
    return int(max_steps) if max_steps is not None else int(envs.get_attr("max_steps")[0])


def info_subgoals(infos: dict[str, Any]) -> np.ndarray:
    """``(B,)`` int64 ground-truth subgoals of a vector env's infos; ``-1`` where there is none
    (after success, or a sub-env whose info lacks the key)."""
    values = infos["subgoal"]
    present = infos.get("_subgoal", np.ones(len(values), dtype=bool))
    return np.array([int(v) if ok and v is not None and v >= 0 else -1 for v, ok in zip(values, present)], dtype=np.int64)


@torch.no_grad()
def rollout_batch(
    model: BaseModel,
    envs: gym.vector.VectorEnv,
    seed: int,
    generator: torch.Generator,
    steering: Steering | None = None,
    controlled_layer: int | None = None,
    greedy: bool = False,
) -> RolloutStats:
    """Run one synchronous episode per sub-env; actions are sampled from the model's policy
    (or its mode / mean if ``greedy``)."""
    layer = model.config.controlled_layer if controlled_layer is None else controlled_layer
    n_envs = envs.num_envs
    max_steps = episode_horizon(envs)
    space = envs.single_action_space
    bounds = (space.low, space.high) if isinstance(space, gym.spaces.Box) else None
    obs, infos = envs.reset(seed=seed)
    cache = model.init_inference_state(n_envs, max_steps + 1)
    active = np.ones(n_envs, dtype=bool)
    success = np.zeros(n_envs, dtype=bool)
    lengths = np.zeros(n_envs, dtype=np.int64)
    colors_visited = np.zeros(n_envs, dtype=np.int64)
    endings = np.full(n_envs, "", dtype=object)
    for t in range(max_steps):
        residual = model.step_lower(torch.from_numpy(np.asarray(obs, dtype=np.float32)), cache, layer)  # (B, W)
        if steering is not None:
            residual = steering(residual, infos, t)
        actions = model.select_action(model.step_upper(residual, cache, layer), generator, greedy).numpy()
        if bounds is not None:
            actions = np.clip(actions, *bounds).astype(space.dtype)
        obs, _, terminated, truncated, infos = envs.step(actions)
        ended = active & (terminated | truncated)
        success[ended] = infos["success"][ended]
        colors_visited[ended] = infos["colors_visited"][ended]
        endings[ended] = new_endings = episode_endings(infos["success"], infos["failure"], truncated)[ended]
        if (new_endings == "").any():
            raise ValueError(f"step {t + 1}: an episode ended without success, failure kind or truncation")
        lengths[ended] = t + 1
        active &= ~ended
        if not active.any():
            break
    endings[active] = "timeout"  # still running at the horizon (a vector env always truncates first)
    return RolloutStats(success, lengths, colors_visited, endings.astype(str))


def evaluate_policy(
    model: BaseModel,
    env_id: str,
    n_episodes: int,
    seed: int,
    batch_envs: int = 250,
    steering_factory: Callable[[], Steering] | None = None,
    controlled_layer: int | None = None,
    greedy: bool = False,
    env_kwargs: dict[str, Any] | None = None,
) -> RolloutStats:
    """Success of the (steered) base model over ``n_episodes`` episodes, in batches.

    Batch ``k`` resets its sub-envs with seeds ``seed + k * batch_envs + i``, so every episode
    has its own layout; sampled actions come from one generator seeded with ``seed`` and drawn
    batch after batch, so the result is a function of ``seed`` and ``batch_envs``.
    ``env_kwargs`` override the env's registered keywords (:func:`make_vector_env`).
    """
    for name, value in (("n_episodes", n_episodes), ("batch_envs", batch_envs)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    generator = torch.Generator().manual_seed(seed)
    parts = []
    done = 0
    while done < n_episodes:
        size = min(batch_envs, n_episodes - done)
        envs = make_vector_env(env_id, size, **(env_kwargs or {}))
        steering = steering_factory() if steering_factory is not None else None
        parts.append(rollout_batch(model, envs, seed + done, generator, steering, controlled_layer, greedy))
        envs.close()
        done += size
    return RolloutStats.concatenate(parts)
