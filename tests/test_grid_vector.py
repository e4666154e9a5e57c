"""Batched grid env: same rules and streams as N single envs (SPEC B2, B2.1; STYLE "Batched environment")."""

from __future__ import annotations

import copy
import pickle

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import hier_envs
from hier_envs.grid import HierGridEnv
from hier_envs.grid_layout import GridLayout, LayoutSampler
from hier_envs.grid_layout import connectivity_automaton
from hier_envs.grid_vector import HierGridVectorEnv
from hier_envs.tasks import GRID_POSTTRAIN_TASK, GRID_PRETRAIN_TASKS

GRID_IDS = sorted(hier_envs.GRID_ENV_IDS)
UP, RIGHT, DOWN, LEFT = range(4)
INFO_KEYS = ("success", "task", "colors_visited", "next_color", "subgoal", "failure")


def draw_layout(rows: str) -> GridLayout:
    """A hand-drawn layout (as jumanji's ToyGenerator): ``#`` wall, digit colour, ``A`` agent, ``.`` free."""
    cells = [line.split() for line in rows.strip().splitlines()]
    walls, colors, agent = [], {}, None
    for r, line in enumerate(cells):
        for c, mark in enumerate(line):
            if mark == "#":
                walls.append((r, c))
            elif mark.isdigit():
                colors[int(mark)] = (r, c)
            elif mark == "A":
                agent = (r, c)
    return GridLayout(len(cells), tuple(walls), tuple(colors[k] for k in sorted(colors)), agent)


TOY = draw_layout(
    """
    A 0 1 . . . .
    . . . . . . .
    # . . 2 . . .
    . . . . . 3 .
    . 4 . # . . .
    . . 5 . 6 . .
    # . . . . 7 #
    """
)
"""Agent at (0, 0) with colours 0 and 1 to its right; two cells below it is a wall."""


def single_envs(env_id: str, n: int) -> list[HierGridEnv]:
    return [gym.make(env_id).unwrapped for _ in range(n)]


def vector_env(env_id: str, n: int, **kwargs) -> HierGridVectorEnv:
    return gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", **kwargs)


def as_batched(value: object) -> object:
    """The batched env's encoding of a single-env info value (None -> -1 for int keys)."""
    return -1 if value is None else value


def assert_info_row(infos: dict, i: int, single_info: dict, keys=INFO_KEYS) -> None:
    for key in keys:
        assert infos[f"_{key}"][i], key
        expected = single_info[key]
        if key in ("next_color", "subgoal"):
            expected = as_batched(expected)
        assert infos[key][i] == expected, (key, i, infos[key][i], expected)


def assert_same_state(a: HierGridVectorEnv, b: HierGridVectorEnv) -> None:
    np.testing.assert_array_equal(a.agent_cells, b.agent_cells)
    np.testing.assert_array_equal(a.colors_visited, b.colors_visited)
    np.testing.assert_array_equal(a.step_counts, b.step_counts)
    np.testing.assert_array_equal(a._obs, b._obs)
    for rng_a, rng_b in zip(a._np_randoms, b._np_randoms):
        assert rng_a.bit_generator.state == rng_b.bit_generator.state


# --------------------------------------------------------------------------- equivalence
@pytest.mark.parametrize("env_id", GRID_IDS)
def test_matches_single_envs_step_for_step(env_id: str) -> None:
    """SPEC B2.1: same seeds and actions give the same outputs as N single envs, across episodes."""
    n, steps, seed = 6, 2000, 123
    envs = vector_env(env_id, n)
    singles = single_envs(env_id, n)
    obs, infos = envs.reset(seed=seed)
    for i, env in enumerate(singles):
        single_obs, single_info = env.reset(seed=seed + i)
        np.testing.assert_array_equal(obs[i], single_obs)
        assert_info_row(infos, i, single_info)
    actions = np.random.default_rng(0).integers(4, size=(steps, n))
    needs_reset = np.zeros(n, dtype=bool)
    episodes = successes = failures = truncations = 0
    for t in range(steps):
        obs, rewards, terminated, truncated, infos = envs.step(actions[t])
        assert obs.dtype == np.float32 and obs.shape == (n, 637)
        assert rewards.dtype == np.float64 and terminated.dtype == bool and truncated.dtype == bool
        for i, env in enumerate(singles):
            if needs_reset[i]:  # NEXT_STEP autoreset: the action is ignored
                single_obs, single_info = env.reset()
                single = (0.0, False, False)
            else:
                single_obs, reward, term, trunc, single_info = env.step(int(actions[t, i]))
                single = (reward, term, trunc)
            np.testing.assert_array_equal(obs[i], single_obs, err_msg=f"step {t} env {i}")
            assert (rewards[i], terminated[i], truncated[i]) == single, (t, i)
            assert_info_row(infos, i, single_info)
            assert envs.agent_cells[i] == env.agent_cell
            assert envs.layout(i) == env.layout
            needs_reset[i] = single[1] or single[2]
            episodes += needs_reset[i]
            successes += single[0] > 0
            failures += single_info["failure"] == "wrong_color"
            truncations += single[2]
    assert episodes > 500 and failures > 400 and truncations > 0  # many episodes, every kind of end


def test_matches_single_envs_with_successes() -> None:
    """A two-colour task is often completed by chance, so rewards and success infos are compared too."""
    n, steps, seed = 8, 2000, 7
    envs = HierGridVectorEnv(n, task=(0, 1), max_steps=30)
    singles = [HierGridEnv(task=(0, 1), max_steps=30) for _ in range(n)]
    envs.reset(seed=seed)
    for i, env in enumerate(singles):
        env.reset(seed=seed + i)
    actions = np.random.default_rng(1).integers(4, size=(steps, n))
    needs_reset = np.zeros(n, dtype=bool)
    total_reward = 0.0
    for t in range(steps):
        obs, rewards, terminated, truncated, infos = envs.step(actions[t])
        for i, env in enumerate(singles):
            if needs_reset[i]:
                single_obs, single_info = env.reset()
                single = (0.0, False, False)
            else:
                single_obs, reward, term, trunc, single_info = env.step(int(actions[t, i]))
                single = (reward, term, trunc)
            np.testing.assert_array_equal(obs[i], single_obs)
            assert (rewards[i], terminated[i], truncated[i]) == single
            assert_info_row(infos, i, single_info)
            needs_reset[i] = single[1] or single[2]
        total_reward += rewards.sum()
    assert total_reward >= 5


@pytest.mark.parametrize("grid_size, n_colors, n_walls", [(7, 8, 4), (5, 4, 3), (3, 2, 1), (7, 8, 12), (4, 2, 0)])
def test_batched_solvability_check_equals_reference(grid_size: int, n_colors: int, n_walls: int) -> None:
    sampler = LayoutSampler(grid_size, n_colors, n_walls)
    rng = np.random.default_rng(grid_size * 100 + n_walls)
    placements = np.stack([sampler.draw_candidate(rng) for _ in range(5000)])
    expected = np.array([sampler.candidate_ok(p) for p in placements])  # flood-fill reference
    assert 0 < expected.sum() < len(expected)  # both outcomes are exercised
    np.testing.assert_array_equal(sampler.candidates_ok(placements), expected)


def test_batched_sampler_draws_like_the_single_env() -> None:
    batched = reference = LayoutSampler(7, 8, 4)
    rngs = [np.random.default_rng(s) for s in range(64)]
    twins = [np.random.default_rng(s) for s in range(64)]
    placements = batched.sample_many(rngs)
    for placement, rng, twin in zip(placements, rngs, twins):
        np.testing.assert_array_equal(placement, reference.sample(twin))
        assert rng.bit_generator.state == twin.bit_generator.state


def test_connectivity_automaton_small_cases() -> None:
    table, accept = connectivity_automaton(3)

    def connected(rows: list[int]) -> bool:
        state = 0
        for pattern in rows:
            state = table[state, pattern]
        return bool(accept[state])

    assert connected([0b111, 0b101, 0b111])  # a ring
    assert connected([0b000, 0b010, 0b000])  # one cell
    assert connected([0, 0, 0])  # no cell: vacuously connected, as layout_is_solvable
    assert not connected([0b101, 0b101, 0b000])  # two columns
    assert not connected([0b100, 0b000, 0b100])  # split by an empty row
    assert connected([0b101, 0b101, 0b111])  # a U joins at the bottom
    assert not connected([0b001, 0b010, 0b000])  # diagonal only


# --------------------------------------------------------------------------- registration and API
@pytest.mark.parametrize("env_id", GRID_IDS)
def test_make_vec_returns_batched_env_with_single_spaces(env_id: str) -> None:
    envs = vector_env(env_id, 3)
    single = gym.make(env_id)
    assert type(envs) is HierGridVectorEnv
    assert envs.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP
    assert envs.single_observation_space == single.observation_space
    assert envs.single_action_space == single.action_space
    assert envs.observation_space.shape == (3, 637)
    assert envs.action_space == gym.spaces.MultiDiscrete([4, 4, 4])
    expected_tasks = {"HierGrid-v0": (GRID_POSTTRAIN_TASK,), "HierGrid-Pretrain-v0": GRID_PRETRAIN_TASKS}[env_id]
    assert envs.tasks == expected_tasks
    obs, infos = envs.reset(seed=0)
    assert envs.observation_space.contains(obs)
    assert infos["next_color"].dtype == np.int64 and infos["task"].dtype == object
    with pytest.warns(UserWarning, match="render_mode"):
        assert envs.render() is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_envs": 0},
        {"num_envs": 2.0},
        {"num_envs": True},
        {"num_envs": 2, "grid_size": 8},
        {"num_envs": 2, "render_mode": "human"},
        {"num_envs": 2, "max_episode_steps": 0},
        {"num_envs": 2, "task": (1, 1)},
        {"num_envs": 2, "n_walls": -1},
    ],
)
def test_constructor_rejects_bad_values(kwargs: dict) -> None:
    with pytest.raises((ValueError, TypeError)):
        HierGridVectorEnv(**kwargs)


def test_max_episode_steps_lowers_the_horizon() -> None:
    envs = HierGridVectorEnv(2, max_episode_steps=3)
    assert envs.max_steps == 3
    envs.reset(seed=0, options={"layout": TOY})
    for _ in range(2):
        _, _, terminated, truncated, _ = envs.step(np.array([DOWN, DOWN]))  # into the wall: stays put
        assert not truncated.any() and not terminated.any()
    _, _, terminated, truncated, _ = envs.step(np.array([DOWN, DOWN]))
    assert truncated.all() and not terminated.any()


# --------------------------------------------------------------------------- actions
@pytest.mark.parametrize(
    "actions, error",
    [
        (np.array([0, 1]), ValueError),  # too short
        (np.array([[0], [1], [2]]), ValueError),  # wrong rank
        (np.int64(1), ValueError),  # a scalar
        (np.array([0.0, 1.0, 2.0]), TypeError),  # floats
        (np.array([True, False, True]), TypeError),  # bools
        (np.array([0, 4, 1]), ValueError),  # out of range
        (np.array([0, 1, -1]), ValueError),
        (np.array([0, 1, 300], dtype=np.uint16), ValueError),
        ([0, None, 1], TypeError),
        ("012", TypeError),
    ],
)
def test_invalid_actions_raise_and_change_nothing(actions: object, error: type) -> None:
    envs = HierGridVectorEnv(3, tasks=GRID_PRETRAIN_TASKS)
    envs.reset(seed=5)
    envs.step(np.array([1, 2, 3]))
    twin = copy.deepcopy(envs)
    with pytest.raises(error) as excinfo:
        envs.step(actions)
    if isinstance(actions, np.ndarray) and actions.shape == (3,) and actions.dtype.kind in "iu":
        bad = int(np.flatnonzero((actions < 0) | (actions >= 4))[0])
        assert f"actions[{bad}] = {actions[bad]}" in str(excinfo.value)
    assert_same_state(envs, twin)
    good = np.array([0, 1, 2])
    for a, b in zip(envs.step(good), twin.step(good)):
        if isinstance(a, dict):
            assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
        else:
            np.testing.assert_array_equal(a, b)


def test_list_and_small_int_dtype_actions_are_accepted() -> None:
    a, b = HierGridVectorEnv(2), HierGridVectorEnv(2)
    a.reset(seed=1)
    b.reset(seed=1)
    np.testing.assert_array_equal(a.step([1, 2])[0], b.step(np.array([1, 2], dtype=np.uint8))[0])


def test_step_before_reset_raises() -> None:
    with pytest.raises(RuntimeError):
        HierGridVectorEnv(2).step(np.array([0, 0]))


# --------------------------------------------------------------------------- returned arrays
def test_returned_arrays_are_not_overwritten_by_later_steps() -> None:
    envs = HierGridVectorEnv(4, tasks=GRID_PRETRAIN_TASKS)
    obs0, infos0 = envs.reset(seed=3)
    saved = (obs0.copy(), {k: v.copy() for k, v in infos0.items()})
    first = envs.step(np.array([0, 1, 2, 3]))
    first_saved = copy.deepcopy(first)
    assert not np.shares_memory(first[0], envs._obs) and not np.shares_memory(obs0, envs._obs)
    actions = np.random.default_rng(0).integers(4, size=(50, 4))
    for a in actions:
        envs.step(a)
    np.testing.assert_array_equal(obs0, saved[0])
    for key, value in infos0.items():
        np.testing.assert_array_equal(value, saved[1][key])
    for now, then in zip(first[:4], first_saved[:4]):
        np.testing.assert_array_equal(now, then)
    for key in first[4]:
        np.testing.assert_array_equal(first[4][key], first_saved[4][key])
    # and the agent really moved in between, so an aliased buffer would have shown it
    assert not np.array_equal(envs.step(actions[0])[0], first_saved[0])


def test_state_accessors_are_copies() -> None:
    envs = HierGridVectorEnv(2)
    envs.reset(seed=0)
    cells = envs.agent_cells
    cells[:] = -5
    visited = envs.colors_visited
    visited[:] = 99
    assert (envs.agent_cells >= 0).all() and (envs.colors_visited == 0).all()
    np.testing.assert_array_equal(envs.next_colors, [GRID_POSTTRAIN_TASK[0]] * 2)


# --------------------------------------------------------------------------- autoreset
def test_next_step_autoreset_ignores_the_action_and_reports_reset_info() -> None:
    envs = HierGridVectorEnv(2, task=(0, 1))
    envs.reset(seed=0, options={"layout": TOY})
    _, rewards, terminated, _, infos = envs.step(np.array([RIGHT, RIGHT]))  # onto colour 0
    assert not terminated.any() and list(infos["colors_visited"]) == [1, 1]
    assert list(infos["next_color"]) == [1, 1] and list(infos["subgoal"]) == [0, 0]
    _, rewards, terminated, truncated, infos = envs.step(np.array([RIGHT, RIGHT]))  # onto colour 1
    assert list(rewards) == [1.0, 1.0] and terminated.all() and not truncated.any()
    assert infos["success"].all() and list(infos["next_color"]) == [-1, -1] and list(infos["subgoal"]) == [-1, -1]
    twin = copy.deepcopy(envs)
    out_a = envs.step(np.array([UP, LEFT]))
    out_b = twin.step(np.array([DOWN, RIGHT]))
    np.testing.assert_array_equal(out_a[0], out_b[0])  # actions ignored on the reset step
    obs, rewards, terminated, truncated, infos = out_a
    assert list(rewards) == [0.0, 0.0] and not terminated.any() and not truncated.any()
    assert list(infos["colors_visited"]) == [0, 0] and not infos["success"].any()
    assert list(infos["failure"]) == [None, None] and list(infos["next_color"]) == [0, 0]
    assert envs.layout(0) != TOY  # pinned layout held for that reset only
    assert (envs.step_counts == 0).all()


def test_ignored_action_on_the_reset_step_cannot_score() -> None:
    """After truncation the next action would complete the task; the autoreset step must ignore it."""
    envs = HierGridVectorEnv(1, task=(0,), max_steps=1)
    envs.reset(seed=0, options={"layout": TOY})
    _, _, terminated, truncated, _ = envs.step(np.array([LEFT]))  # off the grid: truncated at step 1
    assert truncated[0] and not terminated[0]
    _, rewards, terminated, truncated, infos = envs.step(np.array([RIGHT]))  # would enter colour 0
    assert rewards[0] == 0.0 and not terminated[0] and not truncated[0]
    assert infos["colors_visited"][0] == 0 and not infos["success"][0] and infos["failure"][0] is None


def test_wrong_colour_terminates_with_failure_info() -> None:
    envs = HierGridVectorEnv(2, task=(1, 0))
    envs.reset(seed=0, options={"layout": TOY})
    _, rewards, terminated, _, infos = envs.step(np.array([RIGHT, LEFT]))  # env 0 enters colour 0 first
    assert list(terminated) == [True, False] and list(rewards) == [0.0, 0.0]
    assert list(infos["failure"]) == ["wrong_color", None]
    assert list(infos["next_color"]) == [-1, 1] and list(infos["subgoal"]) == [-1, 0]
    assert list(infos["colors_visited"]) == [0, 0]


def test_walls_edges_and_truncation() -> None:
    envs = HierGridVectorEnv(3, max_steps=4)
    envs.reset(seed=0, options={"layout": TOY})
    start = TOY.agent_cell()
    obs, _, _, truncated, _ = envs.step(np.array([UP, LEFT, DOWN]))  # off the grid, off the grid, down
    np.testing.assert_array_equal(envs.agent_cells, [start, start, start + 7])
    np.testing.assert_array_equal(obs[:, 12 * 49 :].argmax(axis=1), [start, start, start + 7])
    _, _, _, truncated, _ = envs.step(np.array([UP, UP, DOWN]))  # env 2 walks into the wall at (2, 0)
    np.testing.assert_array_equal(envs.agent_cells, [start, start, start + 7])
    _, _, terminated, truncated, _ = envs.step(np.array([UP, UP, UP]))
    assert not truncated.any()
    _, _, terminated, truncated, _ = envs.step(np.array([UP, UP, UP]))
    assert truncated.all() and not terminated.any()
    envs.step(np.array([UP, UP, UP]))  # autoreset
    assert (envs.step_counts == 0).all()


def test_standing_on_a_colour_does_not_revisit_it() -> None:
    envs = HierGridVectorEnv(1, task=(0, 1, 0), grid_size=3, n_colors=2, n_walls=1)
    envs.reset(seed=0, options={"layout": draw_layout("A 0 #\n. . 1\n. . .")})
    envs.step(np.array([RIGHT]))  # enter colour 0
    _, _, terminated, _, infos = envs.step(np.array([UP]))  # bump the edge: stays on colour 0
    assert not terminated[0] and infos["colors_visited"][0] == 1 and infos["next_color"][0] == 1


# --------------------------------------------------------------------------- seeding and options
def test_list_of_seeds_matches_single_envs() -> None:
    seeds = [11, 4, 250, 0]
    envs = HierGridVectorEnv(4, tasks=GRID_PRETRAIN_TASKS)
    obs, infos = envs.reset(seed=seeds)
    for i, seed in enumerate(seeds):
        single = HierGridEnv(tasks=GRID_PRETRAIN_TASKS)
        single_obs, single_info = single.reset(seed=seed)
        np.testing.assert_array_equal(obs[i], single_obs)
        assert_info_row(infos, i, single_info)
    assert envs.np_random_seed == tuple(seeds)
    again, _ = HierGridVectorEnv(4, tasks=GRID_PRETRAIN_TASKS).reset(seed=[11, 12, 13, 14])
    np.testing.assert_array_equal(again, HierGridVectorEnv(4, tasks=GRID_PRETRAIN_TASKS).reset(seed=11)[0])


def test_reset_without_seed_continues_each_stream() -> None:
    envs = HierGridVectorEnv(3)
    envs.reset(seed=20)
    obs, _ = envs.reset()
    for i in range(3):
        single = HierGridEnv()
        single.reset(seed=20 + i)
        np.testing.assert_array_equal(obs[i], single.reset()[0])
    fresh_a, _ = HierGridVectorEnv(3).reset()
    fresh_b, _ = HierGridVectorEnv(3).reset()
    assert not np.array_equal(fresh_a, fresh_b)  # fresh entropy


@pytest.mark.parametrize("seed", [[1, 2], [1, 2, -3], [1, 2.5, 3], "abc", 1.5])
def test_bad_seeds_raise(seed: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        HierGridVectorEnv(3).reset(seed=seed)


def test_pinned_task_and_layout_match_single_env() -> None:
    options = {"task": [2, 3, 0], "layout": TOY}
    envs = HierGridVectorEnv(3, tasks=GRID_PRETRAIN_TASKS)
    obs, infos = envs.reset(seed=9, options=options)
    single = HierGridEnv(tasks=GRID_PRETRAIN_TASKS)
    single_obs, single_info = single.reset(seed=9, options=options)
    for i in range(3):
        np.testing.assert_array_equal(obs[i], single_obs)
        assert_info_row(infos, i, single_info)
        assert envs.layout(i) == TOY
    assert list(infos["task"]) == [(2, 3, 0)] * 3
    # a pinned layout draws no layout, but the task draw still consumes the stream as the single env does
    batch = HierGridVectorEnv(3, tasks=GRID_PRETRAIN_TASKS)
    _, batch_info = batch.reset(seed=9, options={"layout": TOY})
    next_obs, _ = batch.reset()
    for i in range(3):
        twin = HierGridEnv(tasks=GRID_PRETRAIN_TASKS)
        twin.reset(seed=9 + i, options={"layout": TOY})
        assert batch_info["task"][i] == twin.progress.task
        np.testing.assert_array_equal(next_obs[i], twin.reset()[0])
    assert len(set(batch_info["task"])) > 1  # the task was still drawn per sub-env


def test_pinned_long_task_and_decoded_observation() -> None:
    long_task = tuple([0, 1] * 10)
    envs = HierGridVectorEnv(2)
    obs, infos = envs.reset(seed=0, options={"task": long_task, "layout": TOY})
    assert infos["task"][1] == long_task
    planes = obs[0].reshape(13, 7, 7)
    assert [tuple(np.argwhere(planes[p])[0]) for p in range(4)] == list(TOY.walls)  # row-major walls
    assert [tuple(np.argwhere(planes[4 + k])[0]) for k in range(8)] == list(TOY.colors)
    assert tuple(np.argwhere(planes[12])[0]) == TOY.agent and planes.sum() == 13
    envs.step(np.array([RIGHT, RIGHT]))
    _, _, _, _, infos = envs.step(np.array([RIGHT, RIGHT]))
    assert list(infos["colors_visited"]) == [2, 2] and list(infos["next_color"]) == [0, 0]


@pytest.mark.parametrize(
    "options",
    [
        {"task": (0, 0)},
        {"task": (0, 9)},
        {"task": "01"},
        {"layout": {"walls": [], "colors": [], "agent": (0, 0)}},
        {"layout": "TOY"},
        {"colour": 1},
        {"reset_mask": np.array([True, False])},
        {"reset_mask": np.zeros(3, dtype=bool)},
    ],
)
def test_bad_options_raise_and_env_stays_usable(options: dict) -> None:
    envs = HierGridVectorEnv(3)
    envs.reset(seed=0)
    twin = copy.deepcopy(envs)
    with pytest.raises((ValueError, TypeError)):
        envs.reset(seed=1, options=options)
    assert_same_state(envs, twin)
    np.testing.assert_array_equal(envs.step(np.array([0, 1, 2]))[0], twin.step(np.array([0, 1, 2]))[0])


def test_reset_mask_resets_only_selected_envs() -> None:
    envs = HierGridVectorEnv(3)
    envs.reset(seed=0)
    envs.step(np.array([1, 1, 1]))
    before = envs.agent_cells
    obs, infos = envs.reset(options={"reset_mask": np.array([False, True, False]), "layout": TOY})
    assert list(infos["_colors_visited"]) == [False, True, False]
    assert envs.agent_cells[1] == TOY.agent_cell() and envs.layout(1) == TOY
    assert envs.agent_cells[0] == before[0] and envs.agent_cells[2] == before[2]
    assert list(envs.step_counts) == [1, 0, 1]


# --------------------------------------------------------------------------- copies and rendering
def test_deepcopy_and_pickle_continue_identically() -> None:
    envs = HierGridVectorEnv(4, tasks=GRID_PRETRAIN_TASKS)
    envs.reset(seed=2)
    actions = np.random.default_rng(3).integers(4, size=(60, 4))
    for a in actions[:20]:
        envs.step(a)
    copies = [copy.deepcopy(envs), pickle.loads(pickle.dumps(envs))]
    for a in actions[20:]:
        expected = envs.step(a)
        for other in copies:
            got = other.step(a)
            np.testing.assert_array_equal(got[0], expected[0])
            np.testing.assert_array_equal(got[1], expected[1])
            np.testing.assert_array_equal(got[4]["task"], expected[4]["task"])


def test_rgb_array_renders_sub_env_zero_like_the_single_env() -> None:
    envs = HierGridVectorEnv(2, render_mode="rgb_array")
    single = HierGridEnv(render_mode="rgb_array")
    envs.reset(seed=4)
    single.reset(seed=4)
    envs.step(np.array([1, 0]))
    single.step(1)
    frame = envs.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    np.testing.assert_array_equal(frame, single.render())
    envs.close()
    single.close()


# ------------------------------------------------------------ review fixes (registration, layouts)
def test_make_vec_takes_the_other_task_keyword() -> None:
    """A user's task=/tasks= replaces the id's task choice, as for the single env (SPEC B2, B2.1)."""
    envs = vector_env("HierGrid-v0", 3, tasks=GRID_PRETRAIN_TASKS[:2])
    assert envs.tasks == GRID_PRETRAIN_TASKS[:2]
    assert vector_env("HierGrid-Pretrain-v0", 2, task=(0, 1)).tasks == ((0, 1),)
    obs, infos = envs.reset(seed=4)
    singles = [HierGridEnv(tasks=GRID_PRETRAIN_TASKS[:2]) for _ in range(3)]
    for i, env in enumerate(singles):
        single_obs, single_info = env.reset(seed=4 + i)
        np.testing.assert_array_equal(obs[i], single_obs)
        assert_info_row(infos, i, single_info)
    with pytest.raises(ValueError, match="either task= or tasks="):
        vector_env("HierGrid-Pretrain-v0", 2, task=(0, 1), tasks=GRID_PRETRAIN_TASKS)


def test_configuration_without_a_solvable_layout_is_refused() -> None:
    with pytest.raises(ValueError, match="0 walls and 3 colours on a 2x2 grid"):
        HierGridVectorEnv(2, grid_size=2, n_colors=3, n_walls=0, task=(0, 1, 2))
    with pytest.raises(ValueError, match="2x2 grid"):
        LayoutSampler(2, 3, 0)


def test_layout_sampling_gives_up_after_the_candidate_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    """An endless run of rejections ends in an error naming the sizes, not an infinite loop."""
    import hier_envs.grid_layout as grid_layout

    sampler = LayoutSampler(7, 8, 4)
    seed = next(s for s in range(100) if not sampler.candidate_ok(sampler.draw_candidate(np.random.default_rng(s))))
    monkeypatch.setattr(grid_layout, "MAX_LAYOUT_CANDIDATES", 1)
    with pytest.raises(RuntimeError, match="4 walls and 8 colours on a 7x7 grid"):
        sampler.sample(np.random.default_rng(seed))
    with pytest.raises(RuntimeError, match="4 walls and 8 colours on a 7x7 grid"):
        sampler.sample_many([np.random.default_rng(s) for s in (seed, seed)])


def test_valid_configurations_draw_the_same_layouts_as_before() -> None:
    """Placements recorded before the candidate cap and the construction check were added:
    same seed, same layouts (the registered grid and ant configurations)."""
    grid = LayoutSampler(7, 8, 4)
    assert grid.sample(np.random.default_rng(0)).tolist() == [22, 11, 35, 4, 2, 3, 18, 21, 46, 36, 1, 23, 20]
    assert grid.sample_many([np.random.default_rng(1), np.random.default_rng(2)]).tolist() == [
        [15, 25, 37, 23, 30, 6, 27, 48, 3, 28, 9, 33, 16],
        [36, 29, 47, 44, 13, 38, 14, 4, 27, 11, 37, 8, 16],
    ]
    ant = LayoutSampler(4, 4, 1)
    assert [ant.sample(np.random.default_rng(s)).tolist() for s in range(3)] == [
        [2, 11, 3, 10, 0, 4], [0, 13, 7, 1, 3, 6], [2, 5, 1, 11, 13, 6],
    ]
