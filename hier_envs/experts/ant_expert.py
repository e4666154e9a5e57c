"""The ant expert: a grid-level shortest-path planner feeding the locomotion policy (SPEC B3).

:class:`AntExpert` acts on a ``HierAnt`` env in two stages:

1. **Planner** (grid level). Cells that are walls or colours other than the next one are
   blocked (entering them ends the episode), except the cell the torso is in (after a visit it
   stands on a colour that is no longer the target); a breadth-first search from the target
   colour's cell gives every cell's distance to it, and :meth:`AntExpert.path` a shortest
   cell path (ties: the neighbour nearest to the torso first, then straight on).
   The *waypoint* follows that path by pure pursuit: the torso is projected onto the line
   from its cell's centre to the next cell's centre, and the waypoint lies ``lookahead``
   metres further along the polyline through the cell centres, so the ant starts turning
   before a corner and drifts back onto the centre line when pushed off it.
2. **Locomotion**: the direction to the waypoint (world axes) goes to the trained
   direction-conditioned Gaussian policy (:mod:`hier_envs.experts.ant_locomotion`), which
   returns torques: the mean (``deterministic=True``, dataset D*) or a sample (dataset D),
   as SPEC A§2.3 describes for the paper's PPO expert.

The expert reads the env's internal state (layout, task progress, MuJoCo ``qpos``/``qvel``):
it is privileged, like the grid expert's dynamic programme, and never part of an agent.

``python -m hier_envs.experts.ant_expert --episodes 200 --seed 0`` measures its success on the
pretraining tasks (``HierAnt-Pretrain-v0``) and on the post-training task (``HierAnt-v0``).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter, deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from hier_envs.ant import HierAntEnv
from hier_envs.experts.ant_locomotion import WEIGHTS_PATH, LocomotionPolicy, locomotion_features
from hier_envs.experts.env_access import started_env

UNREACHABLE = -1
DEFAULT_LOOKAHEAD = 1.0
"""Metres ahead along the path at which the ant aims (pure pursuit)."""


def _ant_env(env: Any) -> HierAntEnv:
    return started_env(env, HierAntEnv, "ant expert")


def cell_distances(grid_size: int, blocked: np.ndarray, target: int) -> np.ndarray:
    """BFS distance (in cells, 4-neighbourhood) from every cell to ``target``; blocked cells and
    cells cut off by them get :data:`UNREACHABLE`. ``target`` itself is never blocked."""
    distances = np.full(grid_size * grid_size, UNREACHABLE, dtype=np.int64)
    distances[target] = 0
    queue = deque([target])
    while queue:
        cell = queue.popleft()
        row, col = divmod(cell, grid_size)
        for d_row, d_col in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            r, c = row + d_row, col + d_col
            if 0 <= r < grid_size and 0 <= c < grid_size:
                neighbour = r * grid_size + c
                if distances[neighbour] == UNREACHABLE and not blocked[neighbour]:
                    distances[neighbour] = distances[cell] + 1
                    queue.append(neighbour)
    return distances


class AntExpert:
    """Shortest-path planner + direction-conditioned locomotion policy (see module docstring).

    ``deterministic`` selects the policy's mean (D*) or samples (D); ``policy`` defaults to the
    shipped weights (:data:`~hier_envs.experts.ant_locomotion.WEIGHTS_PATH`).
    """

    def __init__(self, deterministic: bool = True, policy: LocomotionPolicy | None = None,
                 lookahead: float = DEFAULT_LOOKAHEAD) -> None:
        if not isinstance(deterministic, bool):
            raise TypeError(f"deterministic must be a bool, got {deterministic!r}")
        if not isinstance(lookahead, (int, float)) or not 0.0 < lookahead < float("inf"):
            raise ValueError(f"lookahead must be a positive number of metres, got {lookahead!r}")
        self.deterministic = deterministic
        self.lookahead = float(lookahead)
        self.policy = policy if policy is not None else LocomotionPolicy.load(WEIGHTS_PATH)
        self._plan_key: tuple[Any, int, int] | None = None
        self._distances = np.zeros(0, dtype=np.int64)

    def __repr__(self) -> str:
        return f"AntExpert(deterministic={self.deterministic})"

    def _distances_to(self, env: HierAntEnv, target_color: int) -> np.ndarray:
        """Cell distances to the target colour. The torso's own cell is never blocked: right after
        a visit the ant stands on a colour that is no longer the target and must walk off it."""
        key = (env.layout, target_color, env.agent_cell)
        if key != self._plan_key:
            layout = env.layout
            n_cells = env.grid_size**2
            blocked = np.zeros(n_cells, dtype=bool)
            blocked[layout.wall_cells()] = True
            colors = layout.color_cells()
            blocked[colors] = True
            target = colors[target_color]
            blocked[target] = False
            blocked[env.agent_cell] = False
            self._distances = cell_distances(env.grid_size, blocked, target)
            self._plan_key = key
        return self._distances

    def path(self, env: Any) -> list[int]:
        """Cells of a shortest path from the torso's cell to the next colour's cell (both included).

        Among equally short next cells the first step takes the one nearest to the torso, and
        later steps keep the previous step's heading when they can (fewer turns).
        """
        ant = _ant_env(env)
        target_color = ant.progress.next_color
        if target_color is None:
            raise RuntimeError("the task is finished; there is no next colour to walk to")
        distances = self._distances_to(ant, target_color)
        grid = ant.grid_size
        cell = ant.agent_cell
        cells = [cell]
        if distances[cell] == UNREACHABLE:  # cannot happen on solvable layouts: head straight for the target
            cells.append(ant.layout.color_cells()[target_color])
            return cells
        xy = ant.data.qpos[:2]
        heading: tuple[int, int] | None = None
        while distances[cell] > 0:
            row, col = divmod(cell, grid)
            options = []
            for step in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                r, c = row + step[0], col + step[1]
                if 0 <= r < grid and 0 <= c < grid and distances[r * grid + c] == distances[cell] - 1:
                    centre = ant.cell_center(r, c)
                    rank = float(np.hypot(centre[0] - xy[0], centre[1] - xy[1])) if heading is None else float(step != heading)
                    options.append((rank, step, r * grid + c))
            _, heading, cell = min(options)
            cells.append(cell)
        return cells

    def waypoint(self, env: Any) -> np.ndarray:
        """World (x, y) the ant walks to: pure pursuit along the path through the cell centres.

        The torso is projected onto the path's first segment (its own cell's centre to the next
        cell's centre) and the waypoint lies :attr:`lookahead` metres further along the path,
        so the ant starts turning before it reaches a corner instead of overshooting it.
        """
        ant = _ant_env(env)
        centres = np.array([ant.cell_center(*divmod(cell, ant.grid_size)) for cell in self.path(ant)])
        xy = ant.data.qpos[:2]
        first = centres[1] - centres[0]
        length = float(np.hypot(*first))
        along = float(np.clip((xy - centres[0]) @ first / length, 0.0, length))
        remaining = along + self.lookahead
        for start, end in zip(centres[:-1], centres[1:]):
            segment = end - start
            seg_length = float(np.hypot(*segment))
            if remaining <= seg_length:
                return start + segment * (remaining / seg_length)
            remaining -= seg_length
        return centres[-1]

    def direction(self, env: Any) -> np.ndarray:
        """Unit world-frame vector from the torso to :meth:`waypoint`."""
        ant = _ant_env(env)
        offset = self.waypoint(ant) - ant.data.qpos[:2]
        norm = float(np.hypot(*offset))
        return offset / norm if norm > 1e-9 else np.array([1.0, 0.0])

    def act(self, env: Any, rng: np.random.Generator | None = None) -> np.ndarray:
        """Torques (8,) float32 for the env's current state; ``rng`` is needed when sampling."""
        ant = _ant_env(env)
        features = locomotion_features(ant.data.qpos, ant.data.qvel, self.direction(ant))
        return self.policy.act(features, self.deterministic, rng).astype(np.float32)


def run_ant_expert_episode(env: Any, expert: AntExpert, rng: np.random.Generator, seed: int | None = None):
    """One expert episode; returns (observations (T+1, D), actions (T, 8), subgoals (T,), final info)."""
    obs, info = env.reset(seed=seed)
    observations, actions, subgoals = [obs], [], []
    while True:
        action = expert.act(env, rng)
        subgoals.append(info["subgoal"])
        actions.append(action)
        obs, _, terminated, truncated, info = env.step(action)
        observations.append(obs)
        if terminated or truncated:
            return np.asarray(observations, np.float32), np.asarray(actions, np.float32), np.asarray(subgoals), info


def evaluate_ant_expert(env_id: str, n_episodes: int, seed: int, deterministic: bool = True,
                        policy: LocomotionPolicy | None = None) -> dict[str, Any]:
    """Success rate, failure causes and episode lengths of the expert on ``env_id``.

    The env is reset with ``seed`` once, then without a seed (one stream of layouts and tasks);
    sampled actions use ``np.random.default_rng([seed, 1])``.
    """
    if isinstance(n_episodes, bool) or not isinstance(n_episodes, int) or n_episodes < 1:
        raise ValueError(f"n_episodes must be a positive int, got {n_episodes!r}")
    expert = AntExpert(deterministic, policy)
    env = gym.make(env_id, disable_env_checker=True)
    rng = np.random.default_rng([seed, 1])
    failures: Counter[str] = Counter()
    lengths, successes, visited = [], [], []
    started = time.perf_counter()
    for episode in range(n_episodes):
        _, actions, _, info = run_ant_expert_episode(env, expert, rng, seed=seed if episode == 0 else None)
        successes.append(bool(info["success"]))
        lengths.append(len(actions))
        visited.append(info["colors_visited"])
        failures[info["failure"] or ("success" if info["success"] else "timeout")] += 1
    seconds = time.perf_counter() - started
    env.close()
    return {
        "env_id": env_id, "episodes": n_episodes, "seed": seed, "deterministic": deterministic,
        "success_rate": float(np.mean(successes)), "mean_colors_visited": float(np.mean(visited)),
        "mean_length": float(np.mean(lengths)), "outcomes": dict(sorted(failures.items())),
        "seconds": round(seconds, 1), "env_steps_per_second": round(sum(lengths) / seconds, 1),
    }


def _main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Measure the ant expert's success (SPEC B3).")
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weights", type=Path, default=WEIGHTS_PATH)
    parser.add_argument("--sample", action="store_true", help="sample actions (as for dataset D) instead of the mean")
    parser.add_argument("--env-ids", nargs="+", default=["HierAnt-Pretrain-v0", "HierAnt-v0"])
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    policy = LocomotionPolicy.load(args.weights)
    results = []
    for env_id in args.env_ids:
        stats = evaluate_ant_expert(env_id, args.episodes, args.seed, deterministic=not args.sample, policy=policy)
        results.append(stats)
        print(json.dumps(stats))
    if args.out is not None:
        from hier_envs.atomic_io import write_json_atomic

        write_json_atomic(args.out, {"weights": str(args.weights), "weights_meta": policy.meta, "results": results})


if __name__ == "__main__":
    _main()
