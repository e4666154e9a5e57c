"""HierGrid single-env rules, API and checkers (SPEC A§2.1, B2, B2.1, §9.2 item 10)."""

import copy
import pickle

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from hypothesis import given, settings
from hypothesis import strategies as st

import hier_envs
from hier_envs.grid import HierGridEnv
from hier_envs.grid_layout import base_transitions
from hier_envs.tasks import GRID_POSTTRAIN_TASK, GRID_PRETRAIN_TASKS

GRID_IDS = [env_id for env_id in gym.registry if env_id.startswith("HierGrid")]
UP, RIGHT, DOWN, LEFT = range(4)

# A hand-drawn layout: agent at (3, 3); colour 0 right of it, colour 1 two cells up.
TOY_LAYOUT = {
    "walls": [(0, 0), (0, 6), (6, 0), (6, 6)],
    "colors": [(3, 4), (1, 3), (5, 5), (5, 1), (1, 1), (1, 5), (4, 1), (6, 3)],
    "agent": (3, 3),
}


def toy_env(task=(0, 1), **kwargs) -> HierGridEnv:
    env = HierGridEnv(task=task, **kwargs)
    env.reset(seed=0, options={"layout": TOY_LAYOUT})
    return env


def test_ids_registered_on_import():
    assert set(hier_envs.GRID_ENV_IDS) <= set(GRID_IDS)
    env = gym.make("HierGrid-v0")
    assert isinstance(env.unwrapped, HierGridEnv)
    assert env.unwrapped.tasks == (GRID_POSTTRAIN_TASK,)
    assert gym.make("HierGrid-Pretrain-v0").unwrapped.tasks == GRID_PRETRAIN_TASKS


@pytest.mark.parametrize("env_id", GRID_IDS)
def test_gymnasium_checker(env_id):
    gym_check_env(gym.make(env_id).unwrapped, skip_render_check=False)


@pytest.mark.parametrize("env_id", GRID_IDS)
def test_sb3_checker(env_id):
    from stable_baselines3.common.env_checker import check_env

    check_env(gym.make(env_id), warn=True)


def test_sb3_ppo_learns_without_error():
    from stable_baselines3 import PPO

    model = PPO("MlpPolicy", gym.make("HierGrid-Pretrain-v0"), n_steps=256, batch_size=64, seed=0, device="cpu")
    model.learn(total_timesteps=2000)
    assert model.num_timesteps >= 2000


def test_spaces_and_observation_layout():
    env = toy_env()
    obs = env._obs
    assert env.observation_space.shape == (637,) and env.observation_space.dtype == np.float32
    planes = obs.reshape(13, 7, 7)
    assert planes[12, 3, 3] == 1 and planes[12].sum() == 1  # agent plane
    assert planes[4, 3, 4] == 1 and planes[5, 1, 3] == 1  # colours 0 and 1
    assert planes[0, 0, 0] == 1 and planes[3, 6, 6] == 1  # walls in reading order
    assert planes.sum(axis=(1, 2)).tolist() == [1.0] * 13


def test_visit_rules_and_reward():
    env = toy_env(task=(0, 1))
    obs, reward, terminated, truncated, info = env.step(RIGHT)  # onto colour 0
    assert (reward, terminated, info["colors_visited"], info["next_color"], info["subgoal"]) == (0.0, False, 1, 1, 0)
    env.step(LEFT)
    env.step(UP)  # (2, 3)
    obs, reward, terminated, truncated, info = env.step(UP)  # onto colour 1 at (1, 3)
    assert reward == 1.0 and terminated and not truncated
    assert info["success"] and info["next_color"] is None and info["subgoal"] is None and info["failure"] is None


def test_wrong_colour_terminates_without_reward():
    env = toy_env(task=(1, 0))
    _, reward, terminated, _, info = env.step(RIGHT)  # colour 0 while 1 is next
    assert terminated and reward == 0.0 and info["failure"] == "wrong_color" and not info["success"]


def test_staying_on_a_colour_is_not_a_visit():
    edge_layout = {
        "walls": [(0, 0), (0, 6), (6, 0), (6, 6)],
        "colors": [(0, 3), (3, 0), (6, 3), (3, 6), (2, 2), (2, 4), (4, 2), (4, 4)],
        "agent": (1, 3),
    }
    env = HierGridEnv(task=(0, 1))
    env.reset(seed=0, options={"layout": edge_layout})
    _, _, _, _, info = env.step(UP)  # onto colour 0 on the top edge
    assert info["colors_visited"] == 1
    for _ in range(3):  # bumping the edge keeps the agent on colour 0: no new visit, no failure
        _, _, terminated, _, info = env.step(UP)
        assert env.agent_position == (0, 3) and not terminated and info["colors_visited"] == 1
    _, _, terminated, _, info = env.step(DOWN)
    assert not terminated and info["colors_visited"] == 1


def test_walls_block_movement():
    env = toy_env()
    env.reset(options={"layout": {**TOY_LAYOUT, "agent": (0, 1)}, "task": (2, 3)})
    env.step(LEFT)  # (0, 0) is a wall
    assert env.agent_position == (0, 1)


def test_truncation_at_max_steps():
    env = HierGridEnv(task=(2, 3), max_steps=100)
    env.reset(seed=0, options={"layout": {**TOY_LAYOUT, "agent": (0, 3)}})
    for step in range(1, 101):
        _, _, terminated, truncated, _ = env.step(UP)  # bump the top edge forever
        assert not terminated
        assert truncated == (step == 100)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(UP)


def test_same_seed_same_episode():
    def rollout(seed):
        env = gym.make("HierGrid-Pretrain-v0")
        obs, info = env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        trace = [obs, info["task"]]
        for _ in range(300):
            obs, reward, terminated, truncated, info = env.step(int(rng.integers(4)))
            trace += [obs, reward, terminated, truncated, info]
            if terminated or truncated:
                obs, info = env.reset()
                trace += [obs, info]
        return trace

    first, second, other = rollout(3), rollout(3), rollout(4)
    assert len(first) == len(second)
    for a, b in zip(first, second):
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)
        else:
            assert a == b
    assert any(not np.array_equal(a, b) for a, b in zip(first, other) if isinstance(a, np.ndarray))


@pytest.mark.parametrize("action", [4, -1, 1.5, "up", None, True, np.array([1]), np.float32(2.0)])
def test_invalid_action_raises_and_leaves_state(action):
    env = gym.make("HierGrid-v0").unwrapped
    env.reset(seed=0)
    before = (env._obs.copy(), env.agent_cell, env.step_count, env.progress.colors_visited)
    with pytest.raises((ValueError, TypeError), match="action"):
        env.step(action)
    after = (env._obs, env.agent_cell, env.step_count, env.progress.colors_visited)
    np.testing.assert_array_equal(before[0], after[0])
    assert before[1:] == after[1:]
    env.step(np.int64(1))  # still usable, numpy ints accepted
    env.step(np.array(2))


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"task": [0, 8]}, "colour 8"),
        ({"task": []}, "empty"),
        ({"task": [0, 0.5]}, "0.5"),
        ({"grid_size": 0}, "grid_size"),
        ({"n_walls": -1}, "n_walls"),
        ({"max_steps": 0}, "max_steps"),
        ({"render_mode": "ansi"}, "ansi"),
        ({"task": [0], "tasks": [[0]]}, "either"),
        ({"grid_size": 3, "n_colors": 8}, "cells"),
    ],
)
def test_bad_constructor_arguments(kwargs, fragment):
    with pytest.raises((ValueError, TypeError), match=fragment):
        HierGridEnv(**kwargs)


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"task": [9]}, "colour 9"),
        ({"color": [1]}, "unknown"),
        ({"layout": {**TOY_LAYOUT, "agent": (3, 4)}}, "overlap"),
        ({"layout": {**TOY_LAYOUT, "walls": [(0, 0)]}}, "walls"),
        ({"layout": {**TOY_LAYOUT, "agent": (9, 9)}}, "outside"),
        # colour 0 in the corner (0, 1) sealed by walls (0, 0), (1, 1)... is unreachable
        (
            {"layout": {"walls": [(0, 1), (1, 0), (6, 0), (6, 6)], "colors": [(0, 0)] + TOY_LAYOUT["colors"][1:], "agent": (3, 3)}},
            "not solvable",
        ),
    ],
)
def test_bad_reset_options_keep_env_usable(options, fragment):
    env = gym.make("HierGrid-v0").unwrapped
    env.reset(seed=0)
    with pytest.raises((ValueError, TypeError), match=fragment):
        env.reset(options=options)
    env.reset(seed=1)
    env.step(0)


def test_copies_continue_identically():
    env = gym.make("HierGrid-Pretrain-v0").unwrapped
    env.reset(seed=5)
    for action in (0, 1, 2):
        env.step(action)
    clones = [copy.deepcopy(env), pickle.loads(pickle.dumps(env))]
    rng = np.random.default_rng(0)
    for _ in range(200):
        action = int(rng.integers(4))
        results = [e.step(action) for e in (env, *clones)]
        for result in results[1:]:
            np.testing.assert_array_equal(result[0], results[0][0])
            assert result[1:] == results[0][1:]
        if results[0][2] or results[0][3]:
            resets = [e.reset() for e in (env, *clones)]
            for obs, info in resets[1:]:
                np.testing.assert_array_equal(obs, resets[0][0])
                assert info == resets[0][1]


def test_rgb_array_render():
    env = HierGridEnv(render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.shape == (7 * 64 + 40, 7 * 64, 3)
    row, col = env.layout.colors[0]
    np.testing.assert_array_equal(frame[row * 64 + 5, col * 64 + 5], (230, 25, 75))
    env.close()


def test_human_render_headless():
    env = HierGridEnv(render_mode="human")
    env.metadata = {**env.metadata, "render_fps": 1000}
    env.reset(seed=0)
    assert env.step(0)[0].shape == (637,)
    env.close()


# ---------------------------------------------------------------- properties
tasks_strategy = st.sampled_from(GRID_PRETRAIN_TASKS + (GRID_POSTTRAIN_TASK,))


def reachable_cells(layout, start):
    """Plain BFS over non-wall cells, independent of the bitmask check under test."""
    size = layout.grid_size
    walls = set(layout.walls)
    seen, frontier = {start}, [start]
    while frontier:
        row, col = frontier.pop()
        for d_row, d_col in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            nxt = (row + d_row, col + d_col)
            if 0 <= nxt[0] < size and 0 <= nxt[1] < size and nxt not in walls and nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return seen


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), task=tasks_strategy)
def test_layouts_solvable_and_disjoint(seed, task):
    env = HierGridEnv(task=task)
    env.reset(seed=seed)
    layout = env.layout
    cells = list(layout.walls) + list(layout.colors) + [layout.agent]
    assert len(set(cells)) == 4 + 8 + 1
    non_wall = {(r, c) for r in range(7) for c in range(7)} - set(layout.walls)
    assert reachable_cells(layout, layout.agent) == non_wall
    # every colour is reachable through free cells only, so no task can be blocked
    free = non_wall - set(layout.colors)
    free_component = reachable_cells(
        type(layout)(7, tuple(layout.walls) + tuple(layout.colors), (), layout.agent), layout.agent
    )
    assert free_component == free
    for row, col in layout.colors:
        assert any((row + dr, col + dc) in free for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), task=tasks_strategy)
def test_observation_one_hot_and_reward_only_at_success(seed, task):
    env = HierGridEnv(task=task)
    obs, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(100):
        planes = obs.reshape(13, 49)
        assert set(np.unique(obs)) <= {0.0, 1.0}
        assert (planes.sum(axis=1) == 1).all()
        assert planes[12].argmax() == env.agent_cell
        obs, reward, terminated, truncated, info = env.step(int(rng.integers(4)))
        assert reward == (1.0 if info["success"] else 0.0)
        assert info["success"] == (info["colors_visited"] == len(task))
        if terminated or truncated:
            assert terminated == (info["success"] or info["failure"] == "wrong_color")
            break


def test_base_transitions_edges():
    table = base_transitions(7)
    assert table[0].tolist() == [0, 1, 7, 0]  # top-left corner: up and left are no-ops
    assert table[48].tolist() == [41, 48, 48, 47]


# ------------------------------------------------------------ review fixes (registration, reset, layouts, docs)
def test_registered_ids_take_the_other_task_keyword():
    """A user's task=/tasks= replaces the id's own choice (SPEC B2); both together are still refused."""
    assert gym.make("HierGrid-v0", tasks=GRID_PRETRAIN_TASKS[:2]).unwrapped.tasks == GRID_PRETRAIN_TASKS[:2]
    assert gym.make("HierGrid-Pretrain-v0", task=(0, 1)).unwrapped.tasks == ((0, 1),)
    assert gym.make("HierGrid-v0", task=[2, 3]).unwrapped.tasks == ((2, 3),)
    # the replaced default is not validated: the post-training task needs 8 colours, this world has 4
    assert gym.make("HierGrid-v0", n_colors=4, task=(0, 3)).unwrapped.tasks == ((0, 3),)
    for env_id in GRID_IDS:
        with pytest.raises(ValueError, match="either task= or tasks="):
            gym.make(env_id, task=(0, 1), tasks=GRID_PRETRAIN_TASKS)


@pytest.mark.parametrize("bad_options", [{"task": [42]}, {"layout": {**TOY_LAYOUT, "agent": (3, 4)}}, {"colour": 1}])
def test_rejected_reset_leaves_the_random_stream_untouched(bad_options):
    """Options are validated before the seed is applied (SPEC B2.1 "the env stays usable")."""
    env, reference = HierGridEnv(), HierGridEnv()
    env.reset(seed=1)
    reference.reset(seed=1)
    with pytest.raises(ValueError):
        env.reset(seed=99, options=bad_options)
    obs, info = env.reset()
    expected_obs, expected_info = reference.reset()
    np.testing.assert_array_equal(obs, expected_obs)
    assert info == expected_info


def test_configuration_without_a_solvable_layout_is_refused():
    """3 colours on a 2x2 grid leave one free cell touching only 2 others: no layout is solvable,
    so construction refuses it instead of reset() looping forever."""
    with pytest.raises(ValueError, match="0 walls and 3 colours on a 2x2 grid"):
        HierGridEnv(grid_size=2, n_colors=3, n_walls=0, task=(0, 1, 2))
    HierGridEnv(grid_size=2, n_colors=2, n_walls=0, task=(0, 1)).reset(seed=0)  # a solvable tiny one still works


def test_next_color_is_none_after_any_end_as_documented():
    env = toy_env(task=(1, 0))
    *_, info = env.step(RIGHT)  # colour 0 first: wrong colour
    assert info["failure"] == "wrong_color" and info["next_color"] is None and info["subgoal"] is None
    info_doc = " ".join(HierGridEnv.__doc__.split("## Info", 1)[1].split())
    assert "``None`` after success" not in info_doc  # the old text claimed success only
    assert "``None`` once the episode has ended by success or a wrong colour" in info_doc


def test_rgb_array_render_leaves_the_sdl_driver_alone():
    """Rendering must not set SDL_VIDEODRIVER for the process, or later human windows are dummies."""
    import os
    import subprocess
    import sys

    script = (
        "import os\n"
        "from hier_envs.grid import HierGridEnv\n"
        "env = HierGridEnv(render_mode='rgb_array'); env.reset(seed=0)\n"
        "frame = env.render()\n"
        "print(frame.shape, os.environ.get('SDL_VIDEODRIVER'), os.environ.get('SDL_AUDIODRIVER'))\n"
    )
    environment = {k: v for k, v in os.environ.items() if k not in ("SDL_VIDEODRIVER", "SDL_AUDIODRIVER")}
    result = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True,
                            check=True, timeout=120)
    assert result.stdout.strip().splitlines()[-1] == "(488, 448, 3) None None"
