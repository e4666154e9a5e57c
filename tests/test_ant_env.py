"""HierAnt: registration, checkers, pinpad rules, start state, copies and rendering (SPEC A§2.2, B2)."""

import copy
import math
import os
import pickle

import gymnasium as gym
import mujoco
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from gymnasium.utils.passive_env_checker import env_render_passive_checker

from hier_envs import ANT_ENV_IDS
from hier_envs.ant import INIT_TORSO_Z, START_MARGIN, HierAntEnv, symlog
from hier_envs.ant_arena import BOUNDARY_THICKNESS, CAMERA_MARGIN, WALL_BLOCK_HEIGHT
from hier_envs.grid_layout import GridLayout
from hier_envs.rendering import color_rgb
from hier_envs.tasks import ANT_POSTTRAIN_TASK, ANT_PRETRAIN_TASKS


ROW_LAYOUT = {"walls": [(2, 2)], "colors": [(0, 0), (0, 1), (0, 2), (0, 3)], "agent": (3, 0)}
"""Colours 0-3 along the top row, the wall in the middle, the start bottom-left."""
ZERO = np.zeros(8, dtype=np.float32)


def make_env(**kwargs) -> HierAntEnv:
    env = HierAntEnv(**kwargs)
    env.reset(seed=0, options={"layout": ROW_LAYOUT})
    return env


def teleport(env: HierAntEnv, row: int, col: int, z: float | None = None, dx: float = 0.0, dy: float = 0.0) -> None:
    """Put the torso at cell (row, col)'s centre (plus an offset), at rest, without stepping."""
    x, y = env.cell_center(row, col)
    env.data.qpos[0:2] = (x + dx, y + dy)
    if z is not None:
        env.data.qpos[2] = z
    env.data.qvel[:] = 0.0
    mujoco.mj_forward(env.model, env.data)


def teleport_step(env: HierAntEnv, row: int, col: int, **kwargs):
    teleport(env, row, col, **kwargs)
    return env.step(ZERO)


def _gl_renders() -> bool:
    env = HierAntEnv(render_mode="rgb_array", width=32, height=32)
    env.reset(seed=0)
    try:
        env.render()
    except RuntimeError:
        return False
    finally:
        env.close()
    return True


GL_AVAILABLE = _gl_renders()
needs_gl = pytest.mark.skipif(not GL_AVAILABLE, reason=f"no OpenGL backend for MuJoCo (MUJOCO_GL={os.environ.get('MUJOCO_GL')!r})")


# ------------------------------------------------------------------ registry and checkers
def test_ids_registered_with_the_spec_tasks():
    assert set(ANT_ENV_IDS) == {"HierAnt-v0", "HierAnt-Pretrain-v0"}
    env = gym.make("HierAnt-v0").unwrapped
    assert isinstance(env, HierAntEnv) and env.tasks == (ANT_POSTTRAIN_TASK,) and env.max_steps == 500
    assert (env.grid_size, env.n_colors, env.n_walls) == (4, 4, 1)
    assert gym.make("HierAnt-Pretrain-v0").unwrapped.tasks == ANT_PRETRAIN_TASKS


@pytest.mark.filterwarnings("ignore:.*Box observation space (minimum|maximum) value")  # ±inf like Ant-v5
@pytest.mark.parametrize("env_id", sorted(ANT_ENV_IDS))
def test_gymnasium_checker(env_id):
    gym_check_env(gym.make(env_id).unwrapped, skip_render_check=True)  # "human" needs a display
    if GL_AVAILABLE:
        env = gym.make(env_id, render_mode="rgb_array", width=64, height=64).unwrapped
        env.reset(seed=0)
        env_render_passive_checker(env)
        env.close()


@pytest.mark.parametrize("env_id", sorted(ANT_ENV_IDS))
def test_sb3_checker(env_id):
    from stable_baselines3.common.env_checker import check_env

    check_env(gym.make(env_id), warn=True)


# ------------------------------------------------------------------ spaces and observation
def test_spaces_and_observation_parts():
    env = make_env()
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, (8,), np.float32)
    assert env.observation_space.shape == (41,) and env.observation_space.dtype == np.float32
    sizes = {name: s.stop - s.start for name, s in env.observation_structure.items()}
    assert sizes == {"qpos": 13, "qvel": 14, "global_xy": 2, "color_offsets": 8, "wall_offsets": 2, "local_xy": 2}
    starts = [s.start for s in env.observation_structure.values()]
    assert starts == [0, 13, 27, 29, 37, 39]
    assert env.dt == pytest.approx(0.05) and env.metadata["render_fps"] == 20

    teleport(env, 1, 3, dx=0.3, dy=-0.6)
    obs, *_ = env.step(ZERO)
    part = {name: obs[s] for name, s in env.observation_structure.items()}
    qpos, qvel = env.data.qpos, env.data.qvel
    np.testing.assert_allclose(part["qpos"], symlog(qpos[2:]), rtol=1e-6)
    np.testing.assert_allclose(part["qvel"], symlog(qvel), rtol=1e-6)
    xy = qpos[:2]
    np.testing.assert_allclose(part["global_xy"], xy / 4.0, atol=1e-6)
    centres = np.array([env.cell_center(r, c) for r, c in ROW_LAYOUT["colors"] + ROW_LAYOUT["walls"]])
    np.testing.assert_allclose(part["color_offsets"].reshape(4, 2), (centres[:4] - xy) / 8.0, atol=1e-6)
    np.testing.assert_allclose(part["wall_offsets"], (centres[4] - xy) / 8.0, atol=1e-6)
    np.testing.assert_allclose(part["local_xy"], (xy - env.cell_center(1, 3)) / 1.0, atol=1e-6)
    assert abs(part["local_xy"][0] - 0.3) < 0.05 and abs(part["local_xy"][1] + 0.6) < 0.05
    assert env.observation_space.contains(obs)


def test_cell_geometry_row_zero_is_top():
    env = make_env()
    assert env.cell_center(0, 0) == (-3.0, 3.0) and env.cell_center(3, 3) == (3.0, -3.0)
    assert env.cell_index(-3.9, 3.9) == 0 and env.cell_index(3.9, -3.9) == 15 and env.cell_index(0.1, 0.1) == 6
    assert env.cell_index(9.0, -9.0) == 15  # clamped


# ------------------------------------------------------------------ start state
@pytest.mark.parametrize("seed", range(6))
def test_start_state(seed):
    env = HierAntEnv(tasks=ANT_PRETRAIN_TASKS)
    _, info = env.reset(seed=seed)
    layout = env.layout
    cells = list(layout.walls) + list(layout.colors) + [layout.agent]
    assert len(set(cells)) == 6 and info["task"] in ANT_PRETRAIN_TASKS
    assert info["cell"] == layout.agent and info["colors_visited"] == 0 and info["failure"] is None
    qpos, qvel = env.data.qpos, env.data.qvel
    centre = np.array(env.cell_center(*layout.agent))
    assert np.all(np.abs(qpos[:2] - centre) <= 1.0 - START_MARGIN + 1e-9)
    assert qpos[2] == INIT_TORSO_Z
    w, qx, qy, qz = qpos[3:7]
    assert qx == 0.0 and qy == 0.0 and w**2 + qz**2 == pytest.approx(1.0)
    assert np.all(np.abs(qpos[7:]) <= 0.1) and np.all(np.abs(qvel) <= 0.1)
    assert info["next_color"] == info["subgoal"] == info["task"][0]
    planes = {mujoco.mj_name2id(env.model, mujoco.mjtObj.mjOBJ_GEOM, f"boundary_plane_{s}") for s in "nsew"}
    touching = {int(g) for contact in env.data.contact[: env.data.ncon] for g in contact.geom}
    assert not planes & touching  # the torso never starts inside the boundary


def test_start_noise_and_yaw_vary_with_the_seed():
    env = HierAntEnv()
    layout = {"walls": [(0, 3)], "colors": [(3, 3), (3, 2), (3, 1), (3, 0)], "agent": (1, 1)}
    starts = []
    for seed in range(8):
        env.reset(seed=seed, options={"layout": layout})
        starts.append(env.data.qpos[:7].copy())
    starts = np.array(starts)
    yaws = 2 * np.arctan2(starts[:, 6], starts[:, 3])
    assert np.ptp(starts[:, 0]) > 0.2 and np.ptp(starts[:, 1]) > 0.2 and np.ptp(yaws) > 1.0


# ------------------------------------------------------------------ pinpad rules
def test_visits_in_order_reward_only_at_success():
    env = make_env()
    _, info = env.reset(seed=1, options={"layout": ROW_LAYOUT, "task": [0, 1, 2, 3]})
    assert info["colors_visited"] == 0 and info["next_color"] == 0
    for color, (row, col) in enumerate(ROW_LAYOUT["colors"]):
        obs, reward, terminated, truncated, info = teleport_step(env, row, col)
        assert info["colors_visited"] == color + 1 and info["cell"] == (row, col)
        assert not truncated and info["failure"] is None
        if color < 3:
            assert reward == 0.0 and not terminated and not info["success"]
            assert info["next_color"] == info["subgoal"] == color + 1
            _, reward, terminated, _, info = env.step(ZERO)  # staying in the cell is not a new visit
            assert reward == 0.0 and not terminated and info["colors_visited"] == color + 1
    assert reward == 1.0 and terminated and info["success"]
    assert info["next_color"] is None and info["subgoal"] is None and info["task"] == (0, 1, 2, 3)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(ZERO)


def test_reentering_a_visited_colour_is_a_wrong_colour():
    env = make_env()
    env.reset(seed=2, options={"layout": ROW_LAYOUT, "task": [0, 1]})
    assert teleport_step(env, 0, 0)[4]["colors_visited"] == 1
    _, reward, terminated, _, info = teleport_step(env, 1, 0)  # a free cell
    assert not terminated and info["failure"] is None
    _, reward, terminated, truncated, info = teleport_step(env, 0, 0)
    assert terminated and not truncated and reward == 0.0
    assert info["failure"] == "wrong_color" and not info["success"] and info["colors_visited"] == 1


def test_wrong_colour_terminates_without_reward():
    env = make_env()
    _, reward, terminated, _, info = teleport_step(env, 0, 2)  # colour 2, but 0 is next
    assert terminated and reward == 0.0 and info["failure"] == "wrong_color" and info["next_color"] is None


def test_entering_the_wall_terminates():
    env = make_env()
    _, reward, terminated, truncated, info = teleport_step(env, 2, 2)
    assert terminated and not truncated and reward == 0.0
    assert info["failure"] == "wall" and info["cell"] == (2, 2) and info["colors_visited"] == 0


SPEC_TORSO_Z_BOUNDS = (0.2, 1.0)
"""SPEC A§2.2 "Dynamics and termination" (and §9.2 item 13): the episode ends when the torso
height leaves [0.2, 1.0]. Pinned here from the SPEC, not read from ``HEALTHY_Z_RANGE``."""


def test_torso_too_high_or_too_low_is_a_fall():
    """SPEC A§2.2: a torso that rises above 1.0 or sinks below 0.2 during a step is a fall."""
    low, high = SPEC_TORSO_Z_BOUNDS
    env = make_env()
    _, reward, terminated, _, info = teleport_step(env, 3, 1, z=high + 0.5)
    assert terminated and reward == 0.0 and info["failure"] == "fell"

    env = make_env()
    env.model.opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_CONTACT  # let the torso sink through the floor
    teleport(env, 3, 1, z=low + 0.02)
    env.data.qvel[2] = -2.0
    _, _, terminated, _, info = env.step(ZERO)
    assert env.data.qpos[2] < low and terminated and info["failure"] == "fell"


@pytest.mark.parametrize(
    ("z", "falls"),
    [(SPEC_TORSO_Z_BOUNDS[0] - 0.01, True), (SPEC_TORSO_Z_BOUNDS[0] + 0.01, False),
     (SPEC_TORSO_Z_BOUNDS[1] - 0.01, False), (SPEC_TORSO_Z_BOUNDS[1] + 0.01, True)],
    ids=["just-below-0.2", "just-above-0.2", "just-below-1.0", "just-above-1.0"],
)
def test_torso_height_bounds_are_the_specs(z, falls):
    """SPEC A§2.2 / §9.2 item 13: the healthy torso-height interval is exactly [0.2, 1.0].

    With gravity and all constraints disabled, a torso teleported at rest keeps its height
    through the step, so the height the env checks is ``z`` itself: 0.01 outside either bound
    is a fall, 0.01 inside is not (an interval of, say, (0.1, 1.5) or (0.25, 1.0) fails here).
    """
    env = make_env()
    env.model.opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_GRAVITY | mujoco.mjtDisableBit.mjDSBL_CONSTRAINT
    _, reward, terminated, truncated, info = teleport_step(env, 3, 1, z=z)
    assert env.data.qpos[2] == pytest.approx(z, abs=1e-9)  # the checked height is the one we set
    assert reward == 0.0 and not truncated and env.cell_index(*env.data.qpos[:2]) == 13  # a free cell
    assert terminated is falls
    assert info["failure"] == ("fell" if falls else None)


def test_a_fall_on_a_colour_is_not_a_visit():
    env = make_env()
    _, _, terminated, _, info = teleport_step(env, 0, 0, z=2.0)
    assert terminated and info["failure"] == "fell" and info["colors_visited"] == 0


def test_truncation_at_max_steps():
    env = make_env(max_steps=3)
    for step in (1, 2):
        _, _, terminated, truncated, _ = env.step(ZERO)
        assert not terminated and not truncated, step
    _, reward, terminated, truncated, info = env.step(ZERO)
    assert truncated and not terminated and reward == 0.0 and info["failure"] is None
    with pytest.raises(RuntimeError, match="reset"):
        env.step(ZERO)
    env.reset(seed=0)
    assert env.step(ZERO)[3] is False


def test_termination_on_the_last_step_is_not_truncation():
    env = make_env(max_steps=1)
    _, _, terminated, truncated, info = teleport_step(env, 2, 2)
    assert terminated and not truncated and info["failure"] == "wall"


def test_boundary_keeps_the_torso_in_the_arena():
    env = make_env()
    teleport(env, 1, 3, dx=0.5)
    env.data.qvel[0] = 6.0  # run at the east boundary
    for _ in range(20):
        _, _, terminated, _, info = env.step(ZERO)
        assert not terminated
        assert env.data.qpos[0] < env.arena_half - 0.15 and info["cell"] == (1, 3)


def test_random_rollouts_only_end_for_a_documented_reason():
    env = HierAntEnv(tasks=ANT_PRETRAIN_TASKS, max_steps=150)
    rng = np.random.default_rng(0)
    for seed in range(3):
        env.reset(seed=seed)
        for _ in range(150):
            _, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, 8))
            assert reward == float(info["success"])
            if terminated or truncated:
                break
        assert truncated or info["failure"] in {"fell", "wall", "wrong_color"} or info["success"]
        assert abs(info["x_position"]) < 4 and abs(info["y_position"]) < 4


# ------------------------------------------------------------------ actions
BAD_ACTIONS = [
    (np.zeros(7), ValueError, "shape"),
    (np.zeros((8, 1)), ValueError, "shape"),
    (np.zeros((1, 8)), ValueError, "shape"),
    (0.5, ValueError, "shape"),
    (np.array([0.0] * 7 + [np.nan]), ValueError, "finite"),
    (np.array([0.0] * 7 + [np.inf]), ValueError, "finite"),
    ("abcdefgh", TypeError, "abcdefgh"),
    (["0.1"] * 8, TypeError, "numeric"),
    (np.array([True] * 8), TypeError, "numeric"),
    (None, TypeError, "None"),
    ({"a": 1}, TypeError, "numbers"),
    ([0.1] * 7 + [[0.2]], TypeError, "numbers"),
    (np.zeros(8, dtype=complex), TypeError, "numeric"),
]


@pytest.mark.parametrize(("action", "error", "fragment"), BAD_ACTIONS)
def test_bad_actions_raise_and_leave_the_state(action, error, fragment):
    env = make_env()
    env.step(ZERO)
    before = (env.data.qpos.copy(), env.data.qvel.copy(), env.data.time, env.step_count, env.data.ctrl.copy())
    with pytest.raises(error, match=fragment):
        env.step(action)
    after = (env.data.qpos, env.data.qvel, env.data.time, env.step_count, env.data.ctrl)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    env.step(ZERO)  # still usable


def test_actions_are_clipped_and_any_numeric_dtype_works():
    env = make_env()
    twin = copy.deepcopy(env)
    big = np.array([5.0, -3.0, 2.0, -9.0, 1.5, -1.5, 0.5, -0.5])
    obs_big = env.step(big)[0]
    obs_clipped = twin.step(np.clip(big, -1, 1).astype(np.float32))[0]
    np.testing.assert_array_equal(obs_big, obs_clipped)
    np.testing.assert_array_equal(env.data.ctrl, np.clip(big, -1, 1))
    env.step([0, 1, 0, -1, 0, 1, 0, -1])
    env.step(np.ones(8, dtype=np.int8))


# ------------------------------------------------------------------ arguments and options
@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"grid_size": 1}, "grid_size"),
        ({"n_colors": 0}, "n_colors"),
        ({"n_walls": -1}, "n_walls"),
        ({"max_steps": 0}, "max_steps"),
        ({"max_steps": 2.5}, "max_steps"),
        ({"cell_size": 0.5}, "cell_size"),
        ({"cell_size": float("nan")}, "cell_size"),
        ({"cell_size": "2"}, "cell_size"),
        ({"frame_skip": 0}, "frame_skip"),
        ({"render_mode": "ansi"}, "render_mode"),
        ({"width": 0}, "width"),
        ({"task": [0, 0]}, "twice"),
        ({"task": [4]}, "colour 4"),
        ({"task": [0], "tasks": [[1]]}, "either"),
        ({"tasks": []}, "tasks"),
        ({"grid_size": 2, "n_colors": 4}, "cells"),
    ],
)
def test_bad_constructor_arguments(kwargs, fragment):
    with pytest.raises((ValueError, TypeError), match=fragment):
        HierAntEnv(**kwargs)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"task": [0, 0]}, "twice"),
        ({"task": "0123"}, "sequence"),
        ({"layout": {"walls": [(0, 0)], "colors": [(0, 0), (1, 1), (2, 2), (3, 3)], "agent": (1, 0)}}, "overlap"),
        ({"layout": {"walls": [], "colors": [(0, 1), (1, 1), (2, 2), (3, 3)], "agent": (1, 0)}}, "walls"),
        ({"layout": {"walls": [(0, 2)], "colors": [(0, 1), (1, 0), (2, 2), (3, 3)], "agent": (2, 0)}}, "solvable"),
        ({"seed": 3}, "unknown"),
    ],
)
def test_bad_reset_options_keep_the_env_usable(options, fragment):
    env = make_env()
    with pytest.raises((ValueError, TypeError), match=fragment):
        env.reset(options=options)
    env.step(ZERO)
    env.reset(seed=0)
    env.step(ZERO)


def test_pinned_layout_recolours_without_recompiling():
    env = make_env()
    model = env.model
    colours = [(3, 3), (3, 2), (3, 1), (3, 0)]
    env.reset(seed=5, options={"layout": GridLayout(4, ((0, 3),), tuple(colours), (1, 1)), "task": (3, 2)})
    assert env.model is model and env.progress.task == (3, 2)
    assert env.layout.colors == tuple(colours) and env.layout.walls == ((0, 3),)
    for color, (row, col) in enumerate(colours):
        tile = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, f"tile_{row}_{col}")
        np.testing.assert_allclose(model.geom_rgba[tile, :3], np.array(color_rgb(color)) / 255)
    block = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "wall_block_0")
    np.testing.assert_allclose(model.geom_pos[block], (*env.cell_center(0, 3), WALL_BLOCK_HEIGHT / 2))
    np.testing.assert_allclose(env.data.geom_xpos[block], model.geom_pos[block])


# ------------------------------------------------------------------ determinism and copies
def _rollout(env: HierAntEnv, seed: int, steps: int) -> list:
    obs, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    record = [(obs, info)]
    for _ in range(steps):
        result = env.step(rng.uniform(-1, 1, 8))
        record.append(result)
        if result[2] or result[3]:
            obs, info = env.reset()
            record.append((obs, info))
    return record


def _assert_same(record_a: list, record_b: list) -> None:
    assert len(record_a) == len(record_b)
    for a, b in zip(record_a, record_b):
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1:] == b[1:]


def test_same_seed_same_episode():
    first = _rollout(HierAntEnv(tasks=ANT_PRETRAIN_TASKS), 7, 200)
    second = _rollout(HierAntEnv(tasks=ANT_PRETRAIN_TASKS), 7, 200)
    _assert_same(first, second)
    other = _rollout(HierAntEnv(tasks=ANT_PRETRAIN_TASKS), 8, 5)
    assert not np.array_equal(first[0][0], other[0][0])


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_copies_continue_identically_and_independently(how):
    env = HierAntEnv(tasks=ANT_PRETRAIN_TASKS, max_steps=60)
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(10):
        env.step(rng.uniform(-0.5, 0.5, 8))
    twin = copy.deepcopy(env) if how == "deepcopy" else pickle.loads(pickle.dumps(env))
    assert twin.model is not env.model and twin.data is not env.data
    np.testing.assert_array_equal(twin.model.geom_rgba, env.model.geom_rgba)
    np.testing.assert_array_equal(twin.model.geom_pos, env.model.geom_pos)
    actions = np.random.default_rng(1).uniform(-1, 1, (120, 8))
    records = []
    for copy_env in (twin, env):  # step the copy first: the original must not notice
        record = []
        for action in actions:
            obs, reward, terminated, truncated, info = copy_env.step(action)
            record.append((obs, reward, terminated, truncated, info))
            if terminated or truncated:
                record.append(copy_env.reset())  # the copied RNG draws the same next layout
        records.append(record)
    _assert_same(*records)
    assert twin.np_random is not env.np_random


# ------------------------------------------------------------------ rendering
@needs_gl
def test_rgb_array_shows_the_tiles():
    env = HierAntEnv(render_mode="rgb_array", width=160, height=160)
    env.reset(seed=0, options={"layout": ROW_LAYOUT})
    frame = env.render()
    assert frame.shape == (160, 160, 3) and frame.dtype == np.uint8
    half_extent = env.arena_half + BOUNDARY_THICKNESS + CAMERA_MARGIN  # what the camera frames
    # Tile centres on the floor project through a pinhole camera looking straight down.
    for color, (row, col) in enumerate(ROW_LAYOUT["colors"] + ROW_LAYOUT["walls"]):
        x, y = env.cell_center(row, col)
        u = int(round((x / half_extent + 1) / 2 * 160))
        v = int(round((1 - y / half_extent) / 2 * 160))
        patch = frame[v - 3 : v + 4, u - 3 : u + 4].reshape(-1, 3).astype(float).mean(axis=0)
        if color < 4:
            expected = np.array(color_rgb(color), dtype=float)
            assert np.abs(patch - expected).max() < 60, (color, patch, expected)
        else:
            assert patch.max() < 110, patch  # the dark wall block
    assert env.render() is not frame
    env.close()
    env.close()


def test_render_without_mode_warns_and_human_needs_a_display():
    env = make_env()
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.render() is None
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        pytest.skip("a display is available; the human viewer would open")
    human = HierAntEnv(render_mode="human")
    with pytest.raises(RuntimeError, match="display"):
        human.reset(seed=0)
    human.close()


def test_render_before_reset_raises():
    env = HierAntEnv(render_mode="rgb_array")
    env.close()
    with pytest.raises(RuntimeError, match="reset"):
        env.render()


def test_pickled_env_with_a_renderer():
    env = HierAntEnv(render_mode="rgb_array", width=32, height=32)
    env.reset(seed=0)
    if GL_AVAILABLE:
        env.render()
    twin = pickle.loads(pickle.dumps(env))
    assert twin._renderer is None
    if GL_AVAILABLE:
        np.testing.assert_array_equal(twin.render(), env.render())
    twin.close()
    env.close()


def test_yaw_is_uniform_enough():
    env = HierAntEnv()
    yaws = []
    for seed in range(40):
        env.reset(seed=seed)
        w, _, _, z = env.data.qpos[3:7]
        yaws.append(2 * math.atan2(z, w))
    yaws = np.mod(np.array(yaws), 2 * math.pi)
    counts = np.histogram(yaws, bins=4, range=(0, 2 * math.pi))[0]
    assert counts.min() >= 4, counts


def test_make_vec_stacks_infos_after_a_success():
    """gym.make_vec on HierAnt: `None` next_color/subgoal after success become -1, so infos stack."""
    from hier_envs.ant_vector import NO_COLOR, NoColorInfo, _no_color

    assert _no_color({"subgoal": None, "next_color": None, "failure": None, "cell": 3}) == {
        "subgoal": NO_COLOR, "next_color": NO_COLOR, "failure": None, "cell": 3}
    envs = gym.make_vec("HierAnt-v0", num_envs=2)
    assert type(envs).__name__ == "HierAntVectorEnv" and envs.max_steps == 500
    assert isinstance(envs.envs[0], NoColorInfo)
    _, infos = envs.reset(seed=0)
    assert infos["subgoal"].dtype.kind == "i"
    envs.close()


# ------------------------------------------------------------ review fixes (registration, reset, layouts)
def test_registered_ids_take_the_other_task_keyword():
    """A user's task=/tasks= replaces the id's task choice (SPEC B2); both together are still refused."""
    assert gym.make("HierAnt-v0", tasks=[(0, 1, 2)]).unwrapped.tasks == ((0, 1, 2),)
    assert gym.make("HierAnt-Pretrain-v0", task=(3, 2)).unwrapped.tasks == ((3, 2),)
    envs = gym.make_vec("HierAnt-v0", num_envs=2, tasks=ANT_PRETRAIN_TASKS[:3])
    assert all(env.unwrapped.tasks == ANT_PRETRAIN_TASKS[:3] for env in envs.envs)
    envs.close()
    with pytest.raises(ValueError, match="either task= or tasks="):
        gym.make("HierAnt-Pretrain-v0", task=(0, 1), tasks=ANT_PRETRAIN_TASKS)


def test_rejected_reset_leaves_the_random_stream_untouched():
    """Options are validated before the seed is applied (SPEC B2.1 "the env stays usable")."""
    env, reference = HierAntEnv(), HierAntEnv()
    env.reset(seed=1)
    reference.reset(seed=1)
    with pytest.raises(ValueError, match="twice"):
        env.reset(seed=99, options={"task": [0, 0]})
    obs, info = env.reset()
    expected_obs, expected_info = reference.reset()
    np.testing.assert_array_equal(obs, expected_obs)
    assert info == expected_info


def test_configuration_without_a_solvable_layout_is_refused():
    with pytest.raises(ValueError, match="0 walls and 3 colours on a 2x2 grid"):
        HierAntEnv(grid_size=2, n_colors=3, n_walls=0, task=(0, 1, 2))
