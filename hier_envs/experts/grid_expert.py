"""The gridworld expert: exact shortest paths toward the next colour, with ε-noise (SPEC A§2.3, B3).

The paper's expert is "the stochastic policy that solves the shortest-path problem, computed
exactly by dynamic programming"; with probability ε its action is replaced by a random
*non-terminating* action (SPEC A§2.3). This module makes the INFERRED parts concrete:

- **Distances.** Breadth-first search (exact DP for unit step costs) from the cell of the
  env's next colour. Walls *and every non-target colour cell* are impassable, because entering
  a wrong colour ends the episode (SPEC §9.2 item 10). The agent itself may start a step on a
  colour cell (the one it has just visited) and leave it; only the cells *after* the first
  move must be free or the target.
- **Optimal actions.** ``Q(c, a) = 1 + d(T(c, a))`` for a move that changes cell, ``∞`` for a
  no-op (wall bump or grid edge). The expert is uniform over *all* actions that attain the
  minimum, so ties are broken uniformly (SPEC A§2.3 INFERRED, §9.2 item 10).
- **Non-terminating actions.** Every action whose outcome is not entering a wrong colour.
  Wall bumps and edge no-ops count as non-terminating, and so does entering the *next*
  colour, even when that completes the task (the episode then ends in success, never in a
  noise-induced failure). So ε-noise never ends an episode with ``failure="wrong_color"``.
- **Mixture.** ``π(a | s) = (1 - ε)·Uniform(optimal) + ε·Uniform(non-terminating)``, which is
  exactly "with probability ε replace the action" (SPEC B3). :meth:`GridExpert.act` samples it
  with one uniform draw per step.

The expert is a function of the layout, the agent's cell and the next colour only (STYLE
"Experts and datasets"); distance maps are cached per (layout, target), so a step costs a few
microseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hier_envs.experts.env_access import started_env
from hier_envs.grid import HierGridEnv
from hier_envs.grid_layout import GridLayout, base_transitions, transitions_with_walls

__all__ = ["GridExpert", "LayoutPlan", "evaluate_grid_expert"]

UNREACHABLE = -1
"""Distance value of cells from which the target cannot be reached (walls, wrong colours)."""

_MAX_CACHED_LAYOUTS = 256
"""Layouts whose distance maps the expert keeps (oldest evicted first)."""


class LayoutPlan:
    """Transition table and per-target distance maps of one layout (SPEC A§2.3, B3).

    ``distances(target)`` is a list over cells of the number of steps to *enter* the target's
    cell, moving only through free cells (neither wall nor colour); ``UNREACHABLE`` marks walls
    and colour cells, which may not be crossed. Maps are computed lazily and kept.
    """

    __slots__ = ("layout", "transitions", "cell_color", "_distances")

    def __init__(self, layout: GridLayout) -> None:
        n_cells = layout.grid_size * layout.grid_size
        is_wall = np.zeros(n_cells, dtype=bool)
        is_wall[layout.wall_cells()] = True
        self.layout = layout
        # transitions[cell][action]: the cell reached, equal to ``cell`` for a no-op (edge or wall)
        self.transitions: list[list[int]] = transitions_with_walls(_base(layout.grid_size), is_wall).tolist()
        # cell_color[cell]: colour id, -1 for a free cell, -2 for a wall
        self.cell_color: list[int] = [-1] * n_cells
        for color, cell in enumerate(layout.color_cells()):
            self.cell_color[cell] = color
        for cell in layout.wall_cells():
            self.cell_color[cell] = -2
        self._distances: dict[int, list[int]] = {}

    def distances(self, target: int) -> list[int]:
        """Steps to enter colour ``target`` from each cell's free neighbours (BFS, cached).

        The target cell itself has distance 0; free cells have the length of the shortest
        free path into the target; walls and other colour cells are ``UNREACHABLE`` (they are
        never intermediate cells). Moves are symmetric between non-wall cells, so searching
        backwards from the target along forward moves is exact.
        """
        cached = self._distances.get(target)
        if cached is not None:
            return cached
        if not 0 <= target < len(self.layout.colors):
            raise ValueError(
                f"target colour {target!r} is not in this layout (colours 0..{len(self.layout.colors) - 1})"
            )
        transitions, cell_color = self.transitions, self.cell_color
        dist = [UNREACHABLE] * len(transitions)
        start = self.layout.color_cells()[target]
        dist[start] = 0
        frontier = [start]
        depth = 0
        while frontier:
            depth += 1
            next_frontier = []
            for cell in frontier:
                for neighbour in transitions[cell]:
                    if dist[neighbour] == UNREACHABLE and cell_color[neighbour] == -1:
                        dist[neighbour] = depth
                        next_frontier.append(neighbour)
            frontier = next_frontier
        self._distances[target] = dist
        return dist

    def action_sets(self, cell: int, target: int) -> tuple[list[int], list[int]]:
        """(optimal actions, non-terminating actions) at ``cell`` toward colour ``target``.

        An action is optimal when it changes cell and minimises ``1 + d(next cell)``; it is
        non-terminating unless it enters a colour other than ``target``. Raises ``ValueError``
        if the target cannot be reached from ``cell`` without crossing another colour.
        """
        dist = self.distances(target)
        moves = self.transitions[cell]
        cell_color = self.cell_color
        best = -1
        optimal: list[int] = []
        safe: list[int] = []
        for action, neighbour in enumerate(moves):
            color = cell_color[neighbour]
            if neighbour == cell or color < 0 or color == target:
                safe.append(action)
            if neighbour == cell:
                continue
            d = dist[neighbour]
            if d == UNREACHABLE:
                continue
            if best < 0 or d < best:
                best = d
                optimal = [action]
            elif d == best:
                optimal.append(action)
        if not optimal:
            raise ValueError(
                f"colour {target} cannot be reached from cell {divmod(cell, self.layout.grid_size)} without "
                f"entering another colour (layout {self.layout})"
            )
        return optimal, safe


_BASE_TRANSITIONS: dict[int, np.ndarray] = {}


def _base(grid_size: int) -> np.ndarray:
    table = _BASE_TRANSITIONS.get(grid_size)
    if table is None:
        table = _BASE_TRANSITIONS[grid_size] = base_transitions(grid_size)
    return table


def _grid_env(env: Any) -> HierGridEnv:
    """The :class:`HierGridEnv` under ``env`` (accepts gym wrappers), after a reset."""
    return started_env(env, HierGridEnv, "grid expert")


class GridExpert:
    """Shortest-path expert for :class:`~hier_envs.grid.HierGridEnv` with ε-noise (SPEC A§2.3, B3).

    Uniform over all shortest-path-optimal actions toward the env's next colour, treating
    walls and non-target colours as impassable; with probability ``epsilon`` the action is
    instead uniform over the non-terminating actions (see the module docstring). ``epsilon = 0``
    gives dataset D* and the paper's default for D.

    Parameters
    ----------
    epsilon:
        Noise probability in ``[0, 1]`` (paper default 0, Fig. A2 uses up to 0.2).
    """

    def __init__(self, epsilon: float = 0.0) -> None:
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float, np.floating, np.integer)):
            raise TypeError(f"epsilon must be a number in [0, 1], got {epsilon!r}")
        epsilon = float(epsilon)
        if not 0.0 <= epsilon <= 1.0:  # also rejects NaN
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon!r}")
        self.epsilon = epsilon
        self._plans: dict[GridLayout, LayoutPlan] = {}
        self._last_layout: GridLayout | None = None
        self._last_plan: LayoutPlan | None = None

    def __repr__(self) -> str:
        return f"GridExpert(epsilon={self.epsilon})"

    def plan(self, layout: GridLayout) -> LayoutPlan:
        """The cached :class:`LayoutPlan` of ``layout`` (identity fast path for the current one)."""
        if layout is self._last_layout:
            return self._last_plan  # type: ignore[return-value]
        plan = self._plans.get(layout)
        if plan is None:
            if len(self._plans) >= _MAX_CACHED_LAYOUTS:
                del self._plans[next(iter(self._plans))]
            plan = self._plans[layout] = LayoutPlan(layout)
        self._last_layout, self._last_plan = layout, plan
        return plan

    def _state(self, env: Any) -> tuple[LayoutPlan, int, int]:
        raw = _grid_env(env)
        target = raw.progress.next_color
        if target is None:
            raise RuntimeError("the episode has ended (task complete or failed); call env.reset()")
        return self.plan(raw.layout), raw.agent_cell, target

    def action_probabilities(self, env: Any) -> np.ndarray:
        """The exact action distribution ``(1-ε)·Uniform(optimal) + ε·Uniform(non-terminating)``.

        Returns a float64 array of shape ``(4,)`` that sums to 1.
        """
        plan, cell, target = self._state(env)
        optimal, safe = plan.action_sets(cell, target)
        probs = np.zeros(4, dtype=np.float64)
        probs[optimal] += (1.0 - self.epsilon) / len(optimal)
        probs[safe] += self.epsilon / len(safe)
        return probs

    def act(self, env: Any, rng: np.random.Generator) -> int:
        """Sample an action from :meth:`action_probabilities` with one draw from ``rng``."""
        plan, cell, target = self._state(env)
        optimal, safe = plan.action_sets(cell, target)
        u = rng.random()
        epsilon = self.epsilon
        if u < epsilon:  # the noise branch; u / ε is uniform on [0, 1) given u < ε
            return safe[min(int(u / epsilon * len(safe)), len(safe) - 1)]
        return optimal[min(int((u - epsilon) / (1.0 - epsilon) * len(optimal)), len(optimal) - 1)]


def evaluate_grid_expert(
    task: Sequence[int], episodes: int, seed: int, epsilon: float = 0.0, **env_kwargs: Any
) -> dict[str, Any]:
    """Run the expert on ``episodes`` fresh layouts of one pinned task (SPEC B3, STYLE "Experts").

    The env is reset with ``seed`` once and then without a seed; the expert draws from
    ``np.random.default_rng([seed, 1])`` (a stream distinct from the env's). Returns a dict with
    ``task``, ``episodes``, ``success_rate``, ``mean_length`` (actions per episode, all
    episodes), ``mean_success_length`` (successful episodes only, NaN if none), and the counts
    ``wrong_color`` and ``truncated``.
    """
    if isinstance(episodes, bool) or not isinstance(episodes, (int, np.integer)) or episodes < 1:
        raise ValueError(f"episodes must be a positive int, got {episodes!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")  # int(1.7) would run seed 1
    env = HierGridEnv(task=task, **env_kwargs)
    expert = GridExpert(epsilon)
    rng = np.random.default_rng([int(seed), 1])
    lengths = np.zeros(episodes, dtype=np.int64)
    success = np.zeros(episodes, dtype=bool)
    wrong_color = truncated_count = 0
    for episode in range(episodes):
        env.reset(seed=int(seed) if episode == 0 else None)
        steps = 0
        while True:
            _, _, terminated, truncated, info = env.step(expert.act(env, rng))
            steps += 1
            if terminated or truncated:
                break
        lengths[episode] = steps
        success[episode] = info["success"]
        wrong_color += info["failure"] == "wrong_color"
        truncated_count += bool(truncated)
    return {
        "task": tuple(env.tasks[0]),
        "episodes": int(episodes),
        "success_rate": float(success.mean()),
        "mean_length": float(lengths.mean()),
        "mean_success_length": float(lengths[success].mean()) if success.any() else float("nan"),
        "wrong_color": int(wrong_color),
        "truncated": int(truncated_count),
    }


def _main(argv: Sequence[str] | None = None) -> None:
    """``python -m hier_envs.experts.grid_expert``: expert success on every Table A1 task and the RL task."""
    import argparse

    from hier_envs.tasks import GRID_POSTTRAIN_TASK, GRID_PRETRAIN_TASKS

    parser = argparse.ArgumentParser(description=_main.__doc__)
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epsilon", type=float, default=0.0)
    args = parser.parse_args(argv)
    print(f"| task | episodes | success | mean length | wrong colour | truncated |  (epsilon={args.epsilon})")
    print("|---|---|---|---|---|---|")
    for task in (*GRID_PRETRAIN_TASKS, GRID_POSTTRAIN_TASK):
        r = evaluate_grid_expert(task, args.episodes, args.seed, args.epsilon)
        name = "-".join(map(str, r["task"]))
        print(
            f"| {name} | {r['episodes']} | {r['success_rate']:.3f} | {r['mean_length']:.2f} "
            f"| {r['wrong_color']} | {r['truncated']} |"
        )


if __name__ == "__main__":
    _main()
