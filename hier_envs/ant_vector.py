"""Batched HierAnt: a synchronous vector of MuJoCo envs whose infos stack (SPEC B2, B5).

``gym.make_vec("HierAnt-v0", num_envs=N)`` uses this ``vector_entry_point``. The single env
reports ``next_color`` and ``subgoal`` as ``None`` once an episode has succeeded (SPEC B2), and
Gymnasium's vector-info stacking cannot put ``None`` into an integer array created from the
other sub-envs' ints. Each sub-env therefore reports those two keys as :data:`NO_COLOR` (-1)
instead of ``None``, the convention of the batched grid env
(:class:`hier_envs.grid_vector.HierGridVectorEnv`). Everything else is Gymnasium's
:class:`~gymnasium.vector.SyncVectorEnv` (next-step autoreset); MuJoCo physics dominates the cost,
so the sub-envs step one after another in this process.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from gymnasium.vector import SyncVectorEnv

from hier_envs.grid_vector import NO_COLOR

__all__ = ["HierAntVectorEnv", "NoColorInfo"]

_NONE_IS_NO_COLOR = ("next_color", "subgoal")


class NoColorInfo(gym.Wrapper):
    """Report ``next_color`` / ``subgoal`` as :data:`NO_COLOR` (-1) instead of ``None``, so infos stack."""

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        return obs, _no_color(info)

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, _no_color(info)


def _no_color(info: dict[str, Any]) -> dict[str, Any]:
    return {key: NO_COLOR if key in _NONE_IS_NO_COLOR and value is None else value for key, value in info.items()}


class HierAntVectorEnv(SyncVectorEnv):
    """``num_envs`` HierAnt envs made with ``env_kwargs`` (the id's task keywords), infos stackable."""

    def __init__(self, num_envs: int, **env_kwargs: Any) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        from hier_envs.ant import HierAntEnv

        super().__init__([lambda: NoColorInfo(HierAntEnv(**env_kwargs)) for _ in range(num_envs)])
        self.max_steps: int = self.envs[0].unwrapped.max_steps
        """Horizon of every sub-env (SPEC A§2.2: 500)."""
