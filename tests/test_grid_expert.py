"""The grid DP expert (SPEC A§2.3, B3, §9.2 item 10).

The expert's choices are checked against an independent value-iteration reference written
here on (row, col) coordinates, so the tests do not reuse the module's BFS or transition table.
"""

import functools

import gymnasium as gym
import numpy as np
import pytest

import hier_envs  # noqa: F401  (registers the ids)
from hier_envs.experts import GridExpert, evaluate_grid_expert
from hier_envs.grid import HierGridEnv
from hier_envs.tasks import GRID_POSTTRAIN_TASK, GRID_PRETRAIN_TASKS

UP, RIGHT, DOWN, LEFT = range(4)
DELTAS = ((-1, 0), (0, 1), (1, 0), (0, -1))
ALL_TASKS = [*GRID_PRETRAIN_TASKS, GRID_POSTTRAIN_TASK]
INF = float("inf")

# Agent at (3, 3); colour 0 two up and two left of it, so "up" and "left" tie.
TIES_LAYOUT = {
    "walls": [(0, 0), (0, 6), (6, 0), (6, 6)],
    "colors": [(1, 1), (5, 5), (1, 5), (5, 1), (3, 0), (0, 3), (3, 6), (6, 3)],
    "agent": (3, 3),
}
# Colour 1 sits between the agent (3, 3) and colour 0 (3, 5): the expert must go around.
DETOUR_LAYOUT = {
    "walls": [(0, 0), (0, 6), (6, 0), (6, 6)],
    "colors": [(3, 5), (3, 4), (1, 1), (5, 1), (1, 5), (5, 5), (0, 3), (6, 3)],
    "agent": (3, 3),
}
# Agent in the corner (0, 0) with a wall to its right: "up" and "left" are edge no-ops and
# "right" bumps the wall. Colour 0 is two cells below it, colour 1 far away.
CORNER_LAYOUT = {
    "walls": [(0, 1), (6, 6), (6, 5), (5, 6)],
    "colors": [(2, 0), (4, 4), (1, 5), (5, 1), (4, 0), (0, 3), (3, 6), (6, 3)],
    "agent": (0, 0),
}


def pinned_env(layout, task) -> HierGridEnv:
    env = HierGridEnv(task=task)
    env.reset(seed=0, options={"layout": layout, "task": list(task)})
    return env


# ----------------------------------------------------------------------- reference solver
def _moved(layout, cell, action):
    r, c = cell[0] + DELTAS[action][0], cell[1] + DELTAS[action][1]
    if not (0 <= r < layout.grid_size and 0 <= c < layout.grid_size) or (r, c) in layout.walls:
        return cell
    return (r, c)


@functools.lru_cache(maxsize=4096)
def reference_values(layout, target):
    """Independent value iteration: steps to enter colour ``target`` from each free cell."""
    size = layout.grid_size
    target_cell = layout.colors[target]
    other_colors = set(layout.colors) - {target_cell}
    free = [(r, c) for r in range(size) for c in range(size)
            if (r, c) not in layout.walls and (r, c) not in layout.colors]
    value = {cell: INF for cell in free}
    changed = True
    while changed:
        changed = False
        for cell in free:
            best = INF
            for action in range(4):
                nxt = _moved(layout, cell, action)
                if nxt == cell or nxt in other_colors:
                    continue
                best = min(best, 1 + (0 if nxt == target_cell else value[nxt]))
            if best < value[cell]:
                value[cell], changed = best, True
    return value


def reference_q(layout, start, target):
    """Steps to enter colour ``target`` after each first move from ``start`` (∞: no-op or wrong colour)."""
    value = reference_values(layout, target)
    q = []
    for action in range(4):
        nxt = _moved(layout, start, action)
        if nxt == start or (nxt in layout.colors and nxt != layout.colors[target]):
            q.append(INF)
        else:
            q.append(1 + value.get(nxt, 0))  # the only non-free cell reachable here is the target
    return q


def reference_optimal_length(layout, task) -> float:
    """Shortest number of steps to visit ``task`` in order from the layout's start."""
    total, cell = 0, layout.agent
    for color in task:
        total += min(reference_q(layout, cell, color))
        cell = layout.colors[color]
    return total


# ------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("epsilon", [-0.1, 1.01, float("nan")])
def test_bad_epsilon_raises_value_error(epsilon):
    with pytest.raises(ValueError, match="epsilon"):
        GridExpert(epsilon)


def test_non_number_epsilon_raises_type_error():
    with pytest.raises(TypeError, match="epsilon"):
        GridExpert("0.1")


def run_episodes(task, episodes, seed, epsilon=0.0):
    env = HierGridEnv(task=task)
    expert = GridExpert(epsilon)
    rng = np.random.default_rng(seed)
    results = []
    for episode in range(episodes):
        env.reset(seed=seed if episode == 0 else None)
        layout, steps = env.layout, 0
        while True:
            _, _, terminated, truncated, info = env.step(expert.act(env, rng))
            steps += 1
            if terminated or truncated:
                break
        results.append((layout, steps, info))
    return env, results


def check_expert_is_optimal(task, episodes, seed):
    env, results = run_episodes(task, episodes, seed)
    for layout, steps, info in results:
        optimal = reference_optimal_length(layout, task)
        assert info["failure"] is None
        if optimal <= env.max_steps:
            assert info["success"], (layout, task)
            assert steps == optimal, (layout, task, steps, optimal)
        else:  # the horizon is too short for this layout; never the expert's fault
            assert not info["success"] and steps == env.max_steps
    return results


@pytest.mark.parametrize("task", ALL_TASKS, ids=lambda t: "-".join(map(str, t)))
def test_expert_solves_every_task_on_the_shortest_path(task):
    results = check_expert_is_optimal(task, episodes=50, seed=1 + ALL_TASKS.index(task))
    if task in GRID_PRETRAIN_TASKS:
        assert all(info["success"] for _, _, info in results)


@pytest.mark.slow
@pytest.mark.parametrize("task", ALL_TASKS, ids=lambda t: "-".join(map(str, t)))
def test_expert_solves_every_task_1000_episodes(task):
    results = check_expert_is_optimal(task, episodes=1000, seed=1000 + ALL_TASKS.index(task))
    success = np.mean([info["success"] for _, _, info in results])
    assert success == 1.0 if task in GRID_PRETRAIN_TASKS else success >= 0.99


@pytest.mark.parametrize("env_id", [i for i in gym.registry if i.startswith("HierGrid")])
def test_expert_solves_registered_ids_through_wrappers(env_id):
    env = gym.make(env_id)  # wrapped: the expert reads env.unwrapped
    expert, rng = GridExpert(), np.random.default_rng(0)
    successes = []
    for episode in range(30):
        env.reset(seed=episode)
        while True:
            _, reward, terminated, truncated, info = env.step(expert.act(env, rng))
            if terminated or truncated:
                break
        assert info["failure"] is None
        successes.append(info["success"])
    assert np.mean(successes) >= (1.0 if env_id == "HierGrid-Pretrain-v0" else 0.9)


def test_optimal_set_matches_reference_on_random_layouts():
    env = HierGridEnv(tasks=GRID_PRETRAIN_TASKS)
    expert = GridExpert()
    for episode in range(40):
        env.reset(seed=100 + episode)
        layout = env.layout
        for target in range(env.n_colors):
            plan = expert.plan(layout)
            for cell in range(env.grid_size**2):
                rc = divmod(cell, env.grid_size)
                if rc in layout.walls:
                    continue
                q = reference_q(layout, rc, target)
                optimal, safe = plan.action_sets(cell, target)
                assert optimal == [a for a in range(4) if q[a] == min(q)], (layout, rc, target)
                other_colors = set(layout.colors) - {layout.colors[target]}
                nexts = [plan.transitions[cell][a] for a in range(4)]
                wrong = [a for a in range(4) if nexts[a] != cell and divmod(nexts[a], env.grid_size) in other_colors]
                assert safe == [a for a in range(4) if a not in wrong]


def test_uniform_over_tied_optimal_actions():
    env = pinned_env(TIES_LAYOUT, (0, 1))
    np.testing.assert_allclose(GridExpert(0.0).action_probabilities(env), [0.5, 0.0, 0.0, 0.5])
    # all four moves are non-terminating here, so ε spreads evenly over them
    np.testing.assert_allclose(GridExpert(0.2).action_probabilities(env), [0.45, 0.05, 0.05, 0.45])
    np.testing.assert_allclose(GridExpert(1.0).action_probabilities(env), [0.25] * 4)


def test_sampled_frequencies_match_probabilities():
    env = pinned_env(TIES_LAYOUT, (0, 1))
    expert, rng = GridExpert(0.2), np.random.default_rng(0)
    draws = np.array([expert.act(env, rng) for _ in range(20000)])
    frequencies = np.bincount(draws, minlength=4) / len(draws)
    np.testing.assert_allclose(frequencies, expert.action_probabilities(env), atol=0.01)


def test_non_target_colours_are_avoided():
    env = pinned_env(DETOUR_LAYOUT, (0, 2))
    # right would enter colour 1 (wrong): go around through row 2 or row 4
    np.testing.assert_allclose(GridExpert().action_probabilities(env), [0.5, 0.0, 0.5, 0.0])
    probs = GridExpert(0.6).action_probabilities(env)
    assert probs[RIGHT] == 0.0
    np.testing.assert_allclose(probs, [0.4 * 0.5 + 0.2, 0.0, 0.4 * 0.5 + 0.2, 0.2])
    assert probs.sum() == pytest.approx(1.0)
    expert, rng = GridExpert(), np.random.default_rng(0)
    steps = 0
    while True:
        _, _, terminated, truncated, info = env.step(expert.act(env, rng))
        steps += 1
        if terminated or truncated:
            break
    assert info["success"] and steps == reference_optimal_length(env.layout, (0, 2))


def test_no_ops_count_as_non_terminating():
    env = pinned_env(CORNER_LAYOUT, (0, 1))
    # only "down" moves; up/left are edge no-ops and right bumps the wall: ε spreads over all four
    np.testing.assert_allclose(GridExpert(0.4).action_probabilities(env), [0.1, 0.1, 0.7, 0.1])


def test_expert_leaves_the_colour_it_stands_on():
    env = pinned_env(CORNER_LAYOUT, (0, 1))
    env.step(DOWN)
    env.step(DOWN)  # visit colour 0 at (2, 0); the agent now stands on a colour cell
    assert env.progress.next_color == 1 and env.agent_position == (2, 0)
    probs = GridExpert().action_probabilities(env)
    q = reference_q(env.layout, (2, 0), 1)
    assert min(q) < INF
    np.testing.assert_array_equal(probs > 0, np.array(q) == min(q))
    assert probs.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("epsilon", [0.0, 0.1, 0.5, 1.0])
def test_probabilities_are_a_distribution(epsilon):
    env = HierGridEnv(tasks=GRID_PRETRAIN_TASKS)
    expert, rng = GridExpert(epsilon), np.random.default_rng(0)
    env.reset(seed=5)
    for _ in range(500):
        probs = expert.action_probabilities(env)
        assert probs.shape == (4,) and probs.dtype == np.float64
        assert probs.min() >= 0.0 and probs.sum() == pytest.approx(1.0, abs=1e-12)
        _, _, terminated, truncated, _ = env.step(expert.act(env, rng))
        if terminated or truncated:
            env.reset()


def test_epsilon_noise_never_enters_a_wrong_colour():
    for epsilon in (1.0, 0.3):
        env, results = run_episodes(GRID_POSTTRAIN_TASK, episodes=150, seed=3, epsilon=epsilon)
        failures = {info["failure"] for _, _, info in results}
        assert failures == {None}
        # the pure-noise walk does reach colours (the right ones), it just never fails
        assert max(info["colors_visited"] for _, _, info in results) >= 1


def test_noise_changes_behaviour():
    lengths_clean = [steps for _, steps, _ in run_episodes(GRID_PRETRAIN_TASKS[0], 30, seed=4)[1]]
    lengths_noisy = [steps for _, steps, _ in run_episodes(GRID_PRETRAIN_TASKS[0], 30, seed=4, epsilon=0.3)[1]]
    assert np.mean(lengths_noisy) > np.mean(lengths_clean)


def test_determinism():
    def rollout(seed):
        env = HierGridEnv(tasks=GRID_PRETRAIN_TASKS)
        expert, rng = GridExpert(0.2), np.random.default_rng(seed)
        env.reset(seed=seed)
        actions = []
        for _ in range(300):
            actions.append(expert.act(env, rng))
            _, _, terminated, truncated, _ = env.step(actions[-1])
            if terminated or truncated:
                env.reset()
        return actions

    assert rollout(7) == rollout(7)
    assert rollout(7) != rollout(8)


def test_evaluate_grid_expert_report():
    result = evaluate_grid_expert(GRID_PRETRAIN_TASKS[3], episodes=20, seed=0)
    assert result["task"] == GRID_PRETRAIN_TASKS[3] and result["episodes"] == 20
    assert result["success_rate"] == 1.0 and result["wrong_color"] == 0 and result["truncated"] == 0
    assert 6 <= result["mean_length"] == result["mean_success_length"] < 100
    assert evaluate_grid_expert(GRID_PRETRAIN_TASKS[3], episodes=20, seed=0) == result
    with pytest.raises(ValueError, match="episodes"):
        evaluate_grid_expert(GRID_PRETRAIN_TASKS[3], episodes=0, seed=0)
    for seed in (1.7, True, -1):  # int(1.7) and True would silently run seed 1
        with pytest.raises(ValueError, match="seed"):
            evaluate_grid_expert(GRID_PRETRAIN_TASKS[3], episodes=2, seed=seed)


def test_errors_name_the_problem():
    expert, rng = GridExpert(), np.random.default_rng(0)
    with pytest.raises(RuntimeError, match="reset"):
        expert.act(HierGridEnv(), rng)
    with pytest.raises(TypeError, match="HierGridEnv"):
        expert.act(gym.make("CartPole-v1"), rng)
    env = pinned_env(CORNER_LAYOUT, (0,))
    env.step(DOWN)
    _, _, terminated, _, info = env.step(DOWN)
    assert terminated and info["success"]
    with pytest.raises(RuntimeError, match="ended"):
        expert.action_probabilities(env)
