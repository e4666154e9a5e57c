"""``HierGrid``: the gridworld pinpad of Kobayashi et al. 2025 (SPEC A§2.1, B2)."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from hier_envs.episode_start import draw_layout_and_task, parse_reset_options
from hier_envs.grid_layout import GridLayout, LayoutSampler, base_transitions, transitions_with_walls
from hier_envs.tasks import GRID_POSTTRAIN_TASK, TaskProgress, grid_subgoal, resolve_tasks

RENDER_MODES = ("human", "rgb_array")


def validate_grid_config(
    grid_size: object, n_colors: object, n_walls: object, max_steps: object, render_mode: object
) -> None:
    """Constructor checks shared by the single and the batched grid env (SPEC B2)."""
    for name, value, low in (("grid_size", grid_size, 2), ("n_colors", n_colors, 2), ("n_walls", n_walls, 0)):
        if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    if isinstance(max_steps, bool) or not isinstance(max_steps, Integral) or max_steps < 1:
        raise ValueError(f"max_steps must be a positive int, got {max_steps!r}")
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise ValueError(f"render_mode must be one of {RENDER_MODES} or None, got {render_mode!r}")


def validate_action(action: object, n_actions: int) -> int:
    """Return ``action`` as an int in ``[0, n_actions)`` or raise naming it."""
    if type(action) is int:
        value = action
    elif isinstance(action, np.ndarray) and action.shape == () and np.issubdtype(action.dtype, np.integer):
        value = int(action)
    elif isinstance(action, Integral) and not isinstance(action, bool):
        value = int(action)
    else:
        raise TypeError(f"action must be an integer in [0, {n_actions}), got {action!r} of type {type(action).__name__}")
    if not 0 <= value < n_actions:
        raise ValueError(f"action must be in [0, {n_actions}), got {action!r}")
    return value


class HierGridEnv(gym.Env):
    """Visit coloured cells in a given order on a 7×7 grid, with one sparse reward.

    ## Description
    A G×G grid (G = 7) holds ``n_colors`` = 8 uniquely coloured cells (colour ids 0–7),
    ``n_walls`` = 4 wall cells and the agent. Each episode samples a layout without overlap
    and a task (a sequence of colours). Only a *solvable* layout is accepted: the free
    cells are connected and touch every colour, so every task can be completed
    (see :mod:`hier_envs.grid_layout`). The ground-truth abstract actions are the colour pairs
    A = 0-1, B = 2-3, C = 4-5, D = 6-7 (SPEC A§2.1).

    ## Action Space
    ``Discrete(4)``: 0 = up, 1 = right, 2 = down, 3 = left. Moving off the grid or into a wall
    leaves the agent in place. Anything that is not an integer in ``[0, 4)`` raises and leaves
    the state unchanged.

    ## Observation Space
    ``Box(0, 1, (G²·(W+O+1),), float32)`` = 637 for the paper's sizes: 13 one-hot G×G planes,
    flattened plane-major (``obs[plane * 49 + row * 7 + col]``):

    | planes | content |
    |---|---|
    | 0 … W−1 | wall ``i`` (walls in row-major reading order) |
    | W … W+O−1 | colour ``k`` |
    | W+O | the agent |

    There is no task descriptor and no visited-so-far flag (SPEC A§2.1): the observation alone
    does not tell which colour comes next.

    ## Rewards and Episode End
    Reward 1.0 on the step that completes the whole task, else 0.0. A colour counts as visited
    when the agent *moves onto* it from another cell. ``terminated`` on success or on entering
    any colour other than the next one; ``truncated`` on the step that brings the step count to
    ``max_steps`` (100) unless that step terminates.

    ## Arguments
    - ``task`` (sequence of int, default the post-training task 0-1-2-3-4-5-6-7-0-1-2-3): the
      task of every episode.
    - ``tasks`` (sequence of tasks): instead of ``task``, draw one uniformly on each reset.
    - ``grid_size`` (7), ``n_colors`` (8), ``n_walls`` (4), ``max_steps`` (100).
    - ``render_mode``: ``"human"`` (pygame window), ``"rgb_array"`` or ``None``.
    - ``default_tasks`` (sequence of tasks, default ``None``): the pool used when neither
      ``task`` nor ``tasks`` is given; the registered ids set it (SPEC B2), so a user's ``task``
      or ``tasks`` replaces the id's choice (:func:`~hier_envs.tasks.resolve_tasks`).

    ``reset(seed=..., options={"task": [...], "layout": GridLayout | dict})`` pins the task or
    the layout for that episode (validated; a bad one raises and the env stays usable).

    ## Info
    On reset and on every step: ``success`` (bool), ``task`` (tuple of colour ids),
    ``colors_visited`` (int), ``next_color`` (int; ``None`` once the episode has ended by success
    or a wrong colour), ``subgoal`` (ground-truth abstract action ``next_color // 2``; ``None``
    whenever ``next_color`` is — for analysis only, never an agent input) and ``failure``
    (``None`` or ``"wrong_color"``). A truncated episode keeps reporting the colour still due.
    """

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": 8}

    def __init__(
        self,
        task: Sequence[int] | None = None,
        tasks: Sequence[Sequence[int]] | None = None,
        grid_size: int = 7,
        n_colors: int = 8,
        n_walls: int = 4,
        max_steps: int = 100,
        render_mode: str | None = None,
        default_tasks: Sequence[Sequence[int]] | None = None,
    ) -> None:
        validate_grid_config(grid_size, n_colors, n_walls, max_steps, render_mode)
        self.tasks = resolve_tasks(task, tasks, n_colors, GRID_POSTTRAIN_TASK, default_tasks)
        self.grid_size, self.n_colors, self.n_walls = int(grid_size), int(n_colors), int(n_walls)
        self.max_steps = int(max_steps)
        self.render_mode = render_mode
        self.layout_sampler = LayoutSampler(self.grid_size, self.n_colors, self.n_walls)
        n_cells = self.grid_size**2
        self.n_planes = self.n_walls + self.n_colors + 1
        self.agent_offset = (self.n_planes - 1) * n_cells
        self.observation_space = spaces.Box(0.0, 1.0, (self.n_planes * n_cells,), np.float32)
        self.action_space = spaces.Discrete(4)
        self._base_transitions = base_transitions(self.grid_size)
        self._renderer: Any = None
        self.layout: GridLayout | None = None
        self.progress: TaskProgress | None = None

    # ------------------------------------------------------------------ reset
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        # Options first, then the seed: a rejected reset leaves the generator untouched (SPEC B2.1).
        pinned_task, pinned_layout = parse_reset_options(options, self.n_colors, self.layout_sampler)
        super().reset(seed=seed)
        layout, task = draw_layout_and_task(self.layout_sampler, self.tasks, self.np_random, pinned_task, pinned_layout)
        self._start_episode(layout, task)
        if self.render_mode == "human":
            self.render()
        return self._obs.copy(), self._info(None)

    def _start_episode(self, layout: GridLayout, task: tuple[int, ...]) -> None:
        n_cells = self.grid_size**2
        self.layout = layout
        self.progress = TaskProgress(task)
        is_wall = np.zeros(n_cells, dtype=bool)
        is_wall[layout.wall_cells()] = True
        self._transitions = transitions_with_walls(self._base_transitions, is_wall).tolist()
        self._cell_color = [-1] * n_cells
        for color, cell in enumerate(layout.color_cells()):
            self._cell_color[cell] = color
        obs = np.zeros(self.n_planes * n_cells, dtype=np.float32)
        for plane, cell in enumerate(layout.wall_cells() + layout.color_cells()):
            obs[plane * n_cells + cell] = 1.0
        self.agent_cell = layout.agent_cell()
        obs[self.agent_offset + self.agent_cell] = 1.0
        self._obs = obs
        self.step_count = 0

    # ------------------------------------------------------------------- step
    def step(self, action: object):
        if self.progress is None:
            raise RuntimeError("call reset() before step()")
        action = validate_action(action, 4)
        if self.progress.done or self.step_count >= self.max_steps:
            raise RuntimeError("the episode has ended; call reset() before step()")
        old_cell = self.agent_cell
        new_cell = self._transitions[old_cell][action]
        reward = 0.0
        failure = None
        if new_cell != old_cell:
            self._obs[self.agent_offset + old_cell] = 0.0
            self._obs[self.agent_offset + new_cell] = 1.0
            self.agent_cell = new_cell
            color = self._cell_color[new_cell]
            if color >= 0:
                if not self.progress.enter(color):
                    failure = "wrong_color"
                elif self.progress.success:
                    reward = 1.0
        self.step_count += 1
        terminated = self.progress.done
        truncated = not terminated and self.step_count >= self.max_steps
        if self.render_mode == "human":
            self.render()
        return self._obs.copy(), reward, terminated, truncated, self._info(failure)

    def _info(self, failure: str | None) -> dict[str, Any]:
        progress = self.progress
        next_color = progress.next_color
        return {
            "success": progress.success,
            "task": progress.task,
            "colors_visited": progress.colors_visited,
            "next_color": next_color,
            "subgoal": None if next_color is None else grid_subgoal(next_color),
            "failure": failure,
        }

    # ------------------------------------------------------------------ state
    @property
    def agent_position(self) -> tuple[int, int]:
        """The agent's (row, col)."""
        return divmod(self.agent_cell, self.grid_size)

    # -------------------------------------------------------------- rendering
    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array' or 'human'")
            return None
        if self.layout is None:
            raise RuntimeError("call reset() before render()")
        if self._renderer is None:
            from hier_envs.rendering import GridRenderer

            self._renderer = GridRenderer(self.grid_size, self.n_colors, self.render_mode, self.metadata["render_fps"])
        return self._renderer.draw(self.layout, self.agent_position, self.progress, self.step_count, self.max_steps)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_renderer"] = None  # windows and surfaces are not copied; a copy opens its own
        return state
