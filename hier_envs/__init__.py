"""hier-rl environments: hierarchical sparse-reward pinpad tasks (SPEC A§2, B2).

``import hier_envs`` registers every id below with Gymnasium, each with a batched
``vector_entry_point`` (the grid's is a numpy batch, the ant's a synchronous vector of MuJoCo envs
whose infos stack)::

    import gymnasium as gym
    import hier_envs

    env = gym.make("HierGrid-v0")
    envs = gym.make_vec("HierGrid-v0", num_envs=1024, vectorization_mode="vector_entry_point")
    ant = gym.make("HierAnt-v0")
    ants = gym.make_vec("HierAnt-v0", num_envs=16)

Entry points are strings, so MuJoCo and the ant model load only when an ant env is made.

Each id sets its task choice through the constructors' ``default_tasks`` keyword, not through
``task``/``tasks``: a user's keyword then replaces the id's choice, so
``gym.make("HierGrid-Pretrain-v0", task=...)`` and ``gym.make("HierGrid-v0", tasks=...)`` work
(the same world with other tasks), while passing both ``task`` and ``tasks`` is still refused.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from hier_envs.tasks import ANT_POSTTRAIN_TASK, ANT_PRETRAIN_TASKS, GRID_POSTTRAIN_TASK, GRID_PRETRAIN_TASKS

__all__ = ["ANT_ENV_IDS", "ENV_IDS", "GRID_ENV_IDS"]

GRID_ENV_IDS: dict[str, dict] = {
    "HierGrid-v0": {"default_tasks": (GRID_POSTTRAIN_TASK,)},
    "HierGrid-Pretrain-v0": {"default_tasks": GRID_PRETRAIN_TASKS},
}
"""Grid ids and the keywords that make them: 7×7, 8 colours, 4 walls, horizon 100 (SPEC B2)."""

ANT_ENV_IDS: dict[str, dict] = {
    "HierAnt-v0": {"default_tasks": (ANT_POSTTRAIN_TASK,)},
    "HierAnt-Pretrain-v0": {"default_tasks": ANT_PRETRAIN_TASKS},
}
"""Ant ids: 4×4, 4 colours, 1 wall, horizon 500 (SPEC A§2.2, B2). The envs truncate at their own
``max_steps``, so no ``TimeLimit`` wrapper is added."""

ENV_IDS: tuple[str, ...] = (*GRID_ENV_IDS, *ANT_ENV_IDS)
"""Every id registered by this package."""

for _env_id, _kwargs in GRID_ENV_IDS.items():
    if _env_id not in registry:
        register(
            id=_env_id,
            entry_point="hier_envs.grid:HierGridEnv",
            vector_entry_point="hier_envs.grid_vector:HierGridVectorEnv",
            kwargs=dict(_kwargs),
        )
for _env_id, _kwargs in ANT_ENV_IDS.items():
    if _env_id not in registry:
        register(
            id=_env_id,
            entry_point="hier_envs.ant:HierAntEnv",
            vector_entry_point="hier_envs.ant_vector:HierAntVectorEnv",
            kwargs=dict(_kwargs),
        )
