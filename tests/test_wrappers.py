"""PrivilegedProgressWrapper (SPEC B2, last bullet): checkers, appended progress, spaces."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import hier_envs
from hier_envs.wrappers import PrivilegedProgressWrapper

GRID_IDS = [env_id for env_id in hier_envs.ENV_IDS if env_id.startswith("HierGrid")]


def split(env: PrivilegedProgressWrapper, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    base, rest = obs[: env.base_size], obs[env.base_size :]
    return base, rest[: env.n_colors], rest[env.n_colors :]


@pytest.mark.parametrize("env_id", GRID_IDS)
def test_env_checkers_pass(env_id: str) -> None:
    env = PrivilegedProgressWrapper(gym.make(env_id))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gymnasium recommends checking the unwrapped env
        gym_check_env(env, skip_render_check=True)
    sb3_check_env(env, warn=False)
    env.close()


def test_observation_space_extends_the_base_space() -> None:
    env = PrivilegedProgressWrapper(gym.make("HierGrid-v0"))
    assert env.observation_space.shape == (637 + 8 + 13,)
    assert env.observation_space.dtype == np.float32
    assert env.progress_size == 8 + 13
    np.testing.assert_array_equal(env.observation_space.low, np.zeros(658, np.float32))
    np.testing.assert_array_equal(env.observation_space.high, np.ones(658, np.float32))
    pretrain = PrivilegedProgressWrapper(gym.make("HierGrid-Pretrain-v0"))
    assert pretrain.observation_space.shape == (637 + 8 + 7,)


def _step_toward(env: gym.Env, target_cell: int) -> tuple:
    """One BFS step from the agent toward ``target_cell`` avoiding walls and other colours."""
    base = env.unwrapped
    size = base.grid_size
    blocked = set(base.layout.wall_cells()) | (set(base.layout.color_cells()) - {target_cell})
    moves = {0: (-1, 0), 1: (0, 1), 2: (1, 0), 3: (0, -1)}
    start = base.agent_cell
    parents: dict[int, tuple[int, int]] = {start: (-1, -1)}
    frontier = [start]
    while frontier and target_cell not in parents:
        nxt = []
        for cell in frontier:
            row, col = divmod(cell, size)
            for action, (dr, dc) in moves.items():
                r, c = row + dr, col + dc
                neighbour = r * size + c
                if 0 <= r < size and 0 <= c < size and neighbour not in blocked and neighbour not in parents:
                    parents[neighbour] = (cell, action)
                    nxt.append(neighbour)
        frontier = nxt
    cell = target_cell
    while parents[cell][0] != start:
        cell = parents[cell][0]
    return env.step(parents[cell][1])


def test_appended_part_equals_progress_and_changes_after_a_visit() -> None:
    env = PrivilegedProgressWrapper(gym.make("HierGrid-v0"))
    obs, info = env.reset(seed=3)
    base_obs, next_onehot, visited_onehot = split(env, obs)
    np.testing.assert_array_equal(base_obs, env.unwrapped._obs)
    assert next_onehot.tolist() == np.eye(8)[0].tolist()
    assert visited_onehot.tolist() == np.eye(13)[0].tolist()
    task = info["task"]
    for visit in range(3):
        target = env.unwrapped.layout.color_cells()[task[visit]]
        while True:
            obs, _, terminated, truncated, info = _step_toward(env, target)
            _, next_onehot, visited_onehot = split(env, obs)
            assert int(np.argmax(next_onehot)) == info["next_color"]
            assert next_onehot.sum() == 1.0
            assert int(np.argmax(visited_onehot)) == info["colors_visited"]
            assert visited_onehot.sum() == 1.0
            if env.unwrapped.agent_cell == target:
                break
            assert info["colors_visited"] == visit
        assert info["colors_visited"] == visit + 1
        assert info["next_color"] == task[visit + 1]
        assert not terminated and not truncated
    assert split(env, obs)[1].tolist() == np.eye(8)[task[3]].tolist()


def test_progress_after_success_has_no_next_color() -> None:
    env = PrivilegedProgressWrapper(gym.make("HierGrid-v0", task=[2]))
    _, info = env.reset(seed=0)
    target = env.unwrapped.layout.color_cells()[2]
    terminated = False
    while not terminated:
        obs, reward, terminated, _, info = _step_toward(env, target)
    assert info["success"] and reward == 1.0
    _, next_onehot, visited_onehot = split(env, obs)
    assert next_onehot.tolist() == [0.0] * 8
    assert visited_onehot.tolist() == [0.0, 1.0]


def test_pinned_task_longer_than_max_raises() -> None:
    env = PrivilegedProgressWrapper(gym.make("HierGrid-Pretrain-v0"))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="max_task_length"):
        env.reset(seed=0, options={"task": list(range(8))})
    env.step(0)  # refused before the inner env reset: the episode under way goes on
    wide = PrivilegedProgressWrapper(gym.make("HierGrid-Pretrain-v0"), max_task_length=8)
    obs, _ = wide.reset(seed=0, options={"task": list(range(8))})
    assert obs.shape == (637 + 8 + 9,)


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="max_task_length"):
        PrivilegedProgressWrapper(gym.make("HierGrid-v0"), max_task_length=5)
    with pytest.raises(TypeError, match="n_colors"):
        PrivilegedProgressWrapper(gym.make("CartPole-v1"))
