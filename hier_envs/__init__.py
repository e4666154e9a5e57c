"""hier-rl environments: hierarchical sparse-reward pinpad tasks (SPEC A§2, B2).

``import hier_envs`` registers every id below with Gymnasium, each with a batched
``vector_entry_point`` where one exists::

    import gymnasium as gym
    import hier_envs

    env = gym.make("HierGrid-v0")
    envs = gym.make_vec("HierGrid-v0", num_envs=1024, vectorization_mode="vector_entry_point")
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from hier_envs.tasks import GRID_POSTTRAIN_TASK, GRID_PRETRAIN_TASKS

__all__ = ["ENV_IDS", "GRID_ENV_IDS"]

GRID_ENV_IDS: dict[str, dict] = {
    "HierGrid-v0": {"task": GRID_POSTTRAIN_TASK},
    "HierGrid-Pretrain-v0": {"tasks": GRID_PRETRAIN_TASKS},
}
"""Grid ids and the keywords that make them (SPEC B2 table)."""

ENV_IDS: tuple[str, ...] = tuple(GRID_ENV_IDS)
"""Every id registered by this package."""

for _env_id, _kwargs in GRID_ENV_IDS.items():
    if _env_id not in registry:
        register(
            id=_env_id,
            entry_point="hier_envs.grid:HierGridEnv",
            vector_entry_point="hier_envs.grid_vector:HierGridVectorEnv",
            kwargs=dict(_kwargs),
        )
