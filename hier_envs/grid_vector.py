"""``HierGridVectorEnv``: N grid pinpads stepped at once with numpy (SPEC B2, B2.1).

The rules are exactly those of :class:`hier_envs.grid.HierGridEnv` (SPEC A§2.1); only the
bookkeeping differs. The state is a few arrays with a leading ``num_envs`` axis and
:meth:`HierGridVectorEnv.step` has no Python loop over envs. The only per-env Python work is
the random draws of sub-envs that (auto)reset: each sub-env owns a ``np.random.Generator`` and
draws its layout (through :meth:`LayoutSampler.sample_many`) and then, when the env has several
tasks, its task, in the same order as ``HierGridEnv.reset``. So a batched run and N single envs
with the same seeds and actions agree exactly, step for step, across episodes (SPEC B2.1).

Layout rejection sampling needs one solvability check per round of redraws (about 44 % of
candidates are accepted, so a batch of resets takes about 9 rounds); the batched check is the
row-sweep automaton of :meth:`LayoutSampler.candidates_ok`, 7 table look-ups per round.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from hier_envs.episode_start import parse_reset_options
from hier_envs.grid import validate_grid_config
from hier_envs.grid_layout import (
    MAX_BATCHED_GRID_SIZE,
    GridLayout,
    LayoutSampler,
    base_transitions,
    transitions_with_walls,
)
from hier_envs.tasks import GRID_POSTTRAIN_TASK, TaskProgress, draw_task_index, grid_subgoal, resolve_tasks

__all__ = ["HierGridVectorEnv"]

N_ACTIONS = 4
"""Up, right, down, left (SPEC A§2.1)."""

NO_COLOR = -1
"""Stands for ``None`` in the batched ``next_color``/``subgoal`` info and for "no colour here"."""

# --------------------------------------------------------------------------- the env
class HierGridVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` grid pinpads with the rules of :class:`~hier_envs.grid.HierGridEnv`, in numpy.

    ## Description
    Same world, tasks, rewards and episode ends as ``HierGridEnv`` (SPEC A§2.1, B2); see its
    docstring. Reachable as ``gym.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point")``
    (SPEC B2.1).

    ## Spaces
    ``single_observation_space`` and ``single_action_space`` equal the single env's
    (``Box(0, 1, (637,), float32)`` and ``Discrete(4)``); ``observation_space`` and
    ``action_space`` are their batched versions, ``(num_envs, 637)`` and
    ``MultiDiscrete([4] * num_envs)``. ``step`` takes an integer array of shape ``(num_envs,)``
    with values in ``[0, 4)``; anything else raises ``TypeError``/``ValueError`` naming the bad
    value and changes nothing.

    ## Autoreset and seeding (as ``SyncVectorEnv``)
    ``metadata["autoreset_mode"]`` is ``NEXT_STEP``: on the step after a sub-env terminated or
    truncated, that sub-env is reset instead (its action is ignored) and reports reward 0,
    ``terminated = truncated = False`` and its reset ``info``. ``reset(seed=s)`` seeds sub-env
    ``i`` with ``s + i``; a list of ``num_envs`` seeds (ints or ``None``) is also accepted;
    ``seed=None`` keeps each sub-env's generator (a fresh one from OS entropy for a sub-env that
    has none yet), exactly like N single envs reset without a seed. Each sub-env keeps its own
    generator across autoresets. ``reset(options={"task": ..., "layout": ...})`` pins that task
    and/or layout for every sub-env for this reset only; ``options["reset_mask"]`` (bool array of
    shape ``(num_envs,)``) resets only those sub-envs, as in Gymnasium's vector envs.

    ## Arguments
    ``num_envs`` (positive int), then the single env's keywords: ``task``, ``tasks``,
    ``grid_size`` (7, at most ``MAX_BATCHED_GRID_SIZE`` = 7), ``n_colors`` (8), ``n_walls`` (4),
    ``max_steps`` (100), ``render_mode`` (``"rgb_array"`` renders sub-env 0, or ``None``).
    ``max_episode_steps`` (what ``gym.make_vec`` passes when a spec registers one; ours do not)
    lowers the horizon to ``min(max_steps, max_episode_steps)``. ``default_tasks`` is the
    registered id's task choice, replaced by a user's ``task`` or ``tasks`` (as in the single env).

    ## Info
    Gymnasium's vector convention: for each key of the single env's ``info`` an array of length
    ``num_envs`` plus a ``_key`` bool mask (all True after ``step``). ``success`` (bool),
    ``task`` (object array of tuples), ``colors_visited`` (int64), ``next_color`` and ``subgoal``
    (int64, **-1 where the single env reports None**, i.e. once the episode has ended),
    ``failure`` (object array of ``None`` / ``"wrong_color"``).

    ## State for experts and analysis
    Read-only copies: :attr:`agent_cells`, :attr:`colors_visited`, :attr:`next_colors`,
    :attr:`step_counts`, :attr:`episode_tasks`, :attr:`cell_colors`; :meth:`layout` gives one
    sub-env's :class:`GridLayout`. Cells are row-major, ``cell = row * grid_size + col``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 8, "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int,
        task: Sequence[int] | None = None,
        tasks: Sequence[Sequence[int]] | None = None,
        grid_size: int = 7,
        n_colors: int = 8,
        n_walls: int = 4,
        max_steps: int = 100,
        render_mode: str | None = None,
        max_episode_steps: int | None = None,
        default_tasks: Sequence[Sequence[int]] | None = None,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, Integral) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        validate_grid_config(grid_size, n_colors, n_walls, max_steps, render_mode)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"the batched grid env renders only 'rgb_array' (sub-env 0), got {render_mode!r}")
        if grid_size > MAX_BATCHED_GRID_SIZE:
            raise ValueError(f"the batched grid env supports grid_size <= {MAX_BATCHED_GRID_SIZE}, got {grid_size!r}")
        if max_episode_steps is not None:
            bad = isinstance(max_episode_steps, bool) or not isinstance(max_episode_steps, Integral)
            if bad or max_episode_steps < 1:
                raise ValueError(f"max_episode_steps must be a positive int or None, got {max_episode_steps!r}")
            max_steps = min(int(max_steps), int(max_episode_steps))
        self.tasks = resolve_tasks(task, tasks, n_colors, GRID_POSTTRAIN_TASK, default_tasks)
        self.num_envs = int(num_envs)
        self.grid_size, self.n_colors, self.n_walls = int(grid_size), int(n_colors), int(n_walls)
        self.max_steps = int(max_steps)
        self.render_mode = render_mode
        self.layout_sampler = LayoutSampler(self.grid_size, self.n_colors, self.n_walls)

        n, n_cells = self.num_envs, self.grid_size**2
        self.n_cells = n_cells
        self.n_planes = self.n_walls + self.n_colors + 1
        self.obs_dim = self.n_planes * n_cells
        self.agent_offset = (self.n_planes - 1) * n_cells
        self.single_observation_space = spaces.Box(0.0, 1.0, (self.obs_dim,), np.float32)
        self.single_action_space = spaces.Discrete(N_ACTIONS)
        self.observation_space = batch_space(self.single_observation_space, n)
        self.action_space = batch_space(self.single_action_space, n)

        # Constants for flat indexing: "global cell" g = env * n_cells + cell.
        self._base_transitions = base_transitions(self.grid_size)  # (cells, 4)
        self._cell_base = np.arange(n, dtype=np.intp) * n_cells  # (n,)
        blocks = self._base_transitions[None] + self._cell_base[:, None, None]  # (n, cells, 4)
        self._block_transitions = blocks.reshape(-1, N_ACTIONS)  # (n * cells, 4): n empty grids side by side
        self._obs_shift = np.arange(n, dtype=np.intp) * (self.obs_dim - n_cells) + self.agent_offset  # (n,) g -> idx
        self._plane_offsets = np.arange(self.n_planes, dtype=np.intp) * n_cells  # (planes,)
        self._task_pool = self._pad_tasks(self.tasks)  # (n_tasks, width)
        self._task_pool_lengths = np.array([len(t) for t in self.tasks], dtype=np.int64)  # (n_tasks,)
        self._task_pool_objects = np.empty(len(self.tasks), dtype=object)  # (n_tasks,) tuples
        for i, pool_task in enumerate(self.tasks):
            self._task_pool_objects[i] = pool_task
        self._no_failure = np.full(n, None, dtype=object)  # (n,)

        # Per-env state (SPEC B2.1: a leading num_envs axis, no loop over envs in step).
        self._np_randoms: list[np.random.Generator | None] = [None] * n
        self._np_random_seeds: list[int | None] = [None] * n
        self._agent_globals = np.zeros(n, dtype=np.intp)  # (n,) env * cells + agent cell
        self._step_counts = np.zeros(n, dtype=np.int64)  # (n,)
        self._colors_visited = np.zeros(n, dtype=np.int64)  # (n,)
        self._next_colors = np.full(n, NO_COLOR, dtype=np.int64)  # (n,) -1 once ended
        self._failed = np.zeros(n, dtype=bool)  # (n,) entered a wrong colour on the last step
        self._autoreset = np.zeros(n, dtype=bool)  # (n,) reset on the next step (NEXT_STEP)
        self._transitions = np.zeros((n, n_cells, N_ACTIONS), dtype=np.intp)  # (n, cells, 4) global cells
        self._cell_colors = np.full((n, n_cells), NO_COLOR, dtype=np.int64)  # (n, cells)
        self._tasks = np.full((n, self._task_pool.shape[1]), NO_COLOR, dtype=np.int64)  # (n, width) padded
        self._task_offsets = np.arange(n, dtype=np.intp) * self._tasks.shape[1]  # (n,) flat row starts
        self._task_lengths = np.ones(n, dtype=np.int64)  # (n,)
        self._task_objects = np.full(n, None, dtype=object)  # (n,) tuples
        self._placements = np.zeros((n, self.n_planes), dtype=np.intp)  # (n, planes) walls sorted, colours, start
        self._obs = np.zeros((n, self.obs_dim), dtype=np.float32)  # (n, obs_dim)
        self._has_reset = False
        self._renderer: Any = None

    @staticmethod
    def _pad_tasks(tasks: Sequence[tuple[int, ...]]) -> np.ndarray:
        """``(len(tasks), longest + 1)`` colour ids padded with -1; the pad column makes
        ``tasks[env, colors_visited]`` read -1 (no next colour) after success."""
        width = max(len(t) for t in tasks) + 1
        padded = np.full((len(tasks), width), NO_COLOR, dtype=np.int64)
        for row, task in enumerate(tasks):
            padded[row, : len(task)] = task
        return padded

    # ------------------------------------------------------------------ reset
    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset all sub-envs (or those in ``options["reset_mask"]``); seeding as ``SyncVectorEnv`` (SPEC B2.1)."""
        seeds = self._parse_seeds(seed)
        pinned_task, pinned_layout, mask = self._parse_options(options)
        env_ids = np.arange(self.num_envs) if mask is None else np.flatnonzero(mask)
        for i in env_ids:
            if seeds[i] is not None or self._np_randoms[i] is None:
                self._np_randoms[i], self._np_random_seeds[i] = seeding.np_random(seeds[i])
        self._reset_envs(env_ids, pinned_task, pinned_layout)
        self._failed[env_ids] = False
        self._autoreset[env_ids] = False
        self._has_reset = True
        infos = self._infos(self._no_failure.copy())
        if mask is not None:
            for key in list(infos):
                if key.startswith("_"):
                    infos[key] = mask.copy()
        return self._obs.copy(), infos

    def _parse_seeds(self, seed: object) -> list[int | None]:
        if seed is None:
            return [None] * self.num_envs
        if isinstance(seed, Integral) and not isinstance(seed, bool):
            seeds: list[object] = [int(seed) + i for i in range(self.num_envs)]
        elif isinstance(seed, (Sequence, np.ndarray)) and not isinstance(seed, (str, bytes)):
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"a list of seeds must have num_envs={self.num_envs} entries, got {len(seeds)}")
        else:
            raise TypeError(f"seed must be an int, a list of {self.num_envs} ints/None, or None; got {seed!r}")
        for i, value in enumerate(seeds):
            if value is not None and (isinstance(value, bool) or not isinstance(value, Integral) or value < 0):
                raise ValueError(f"seed {i} must be a non-negative int or None, got {value!r}")
        return [None if value is None else int(value) for value in seeds]  # type: ignore[arg-type]

    def _parse_options(
        self, options: dict[str, Any] | None
    ) -> tuple[tuple[int, ...] | None, GridLayout | None, np.ndarray | None]:
        """Validate ``reset`` options before anything changes (same checks as the single env)."""
        task, layout = parse_reset_options(options, self.n_colors, self.layout_sampler, extra_keys=("reset_mask",))
        mask = None if options is None else options.get("reset_mask")
        if mask is not None:
            if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.shape != (self.num_envs,):
                raise ValueError(
                    f"options['reset_mask'] must be a bool array of shape ({self.num_envs},), got {mask!r}"
                )
            if not mask.any():
                raise ValueError("options['reset_mask'] must select at least one sub-env")
            if not self._has_reset and not mask.all():
                raise RuntimeError("the first reset() must reset every sub-env; drop options['reset_mask']")
        return task, layout, mask

    def _reset_envs(self, env_ids: np.ndarray, task: tuple[int, ...] | None, layout: GridLayout | None) -> None:
        """Start new episodes in ``env_ids``, drawing as ``HierGridEnv.reset`` does: layout, then task."""
        k = len(env_ids)
        rngs = [self._np_randoms[i] for i in env_ids.tolist()]
        if layout is None:
            placements = self.layout_sampler.sample_many(rngs)  # (k, planes)
        else:
            pinned = layout.wall_cells() + layout.color_cells() + [layout.agent_cell()]
            placements = np.tile(np.array(pinned, dtype=np.intp), (k, 1))  # (k, planes)
        if task is not None:
            if len(task) + 1 > self._tasks.shape[1]:  # a pinned task longer than the pool's: widen
                wider = np.full((self.num_envs, len(task) + 1), NO_COLOR, dtype=np.int64)  # (n, width)
                wider[:, : self._tasks.shape[1]] = self._tasks
                self._tasks = wider
                self._task_offsets = np.arange(self.num_envs, dtype=np.intp) * wider.shape[1]
            self._tasks[env_ids] = NO_COLOR
            self._tasks[env_ids, : len(task)] = task
            self._task_lengths[env_ids] = len(task)
            task_object = np.empty(1, dtype=object)  # (1,) so numpy keeps the tuple whole
            task_object[0] = task
            self._task_objects[env_ids] = task_object
        else:
            pool_ids = np.array([draw_task_index(len(self.tasks), rng) for rng in rngs], dtype=np.intp)  # (k,)
            self._tasks[env_ids] = NO_COLOR
            self._tasks[env_ids, : self._task_pool.shape[1]] = self._task_pool[pool_ids]
            self._task_lengths[env_ids] = self._task_pool_lengths[pool_ids]
            self._task_objects[env_ids] = self._task_pool_objects[pool_ids]

        n_walls, n_colors, n_cells = self.n_walls, self.n_colors, self.n_cells
        placements = np.asarray(placements, dtype=np.intp)
        placements[:, :n_walls].sort(axis=1)  # wall plane i = i-th wall in reading order (GridLayout)
        rows = np.arange(k)[:, None]  # (k, 1)
        self._placements[env_ids] = placements
        is_wall = np.zeros((k, n_cells), dtype=bool)  # (k, cells)
        is_wall[rows, placements[:, :n_walls]] = True
        cell_base = self._cell_base[env_ids]  # (k,)
        # The k layouts as k disjoint blocks of one big grid, through the 1-D path of transitions_with_walls.
        blocks = self._block_transitions[: k * n_cells]  # (k * cells, 4)
        block_transitions = transitions_with_walls(blocks, is_wall.ravel())  # (k * cells, 4) block-local ids
        block_shift = cell_base - np.arange(k) * n_cells  # (k,) block id -> global id
        self._transitions[env_ids] = block_transitions.reshape(k, n_cells, N_ACTIONS) + block_shift[:, None, None]
        cell_colors = np.full((k, n_cells), NO_COLOR, dtype=np.int64)  # (k, cells)
        cell_colors[rows, placements[:, n_walls : n_walls + n_colors]] = np.arange(n_colors)
        self._cell_colors[env_ids] = cell_colors
        obs = np.zeros((k, self.obs_dim), dtype=np.float32)  # (k, obs_dim)
        obs[rows, self._plane_offsets + placements] = 1.0  # planes: walls, colours, agent
        self._obs[env_ids] = obs
        self._agent_globals[env_ids] = cell_base + placements[:, -1]
        self._step_counts[env_ids] = 0
        self._colors_visited[env_ids] = 0
        self._next_colors[env_ids] = self._tasks[env_ids, 0]


    # ------------------------------------------------------------------- step
    def step(
        self, actions: object
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Move every agent, then autoreset the sub-envs that ended on the previous step (SPEC B2.1).

        Same rules as ``HierGridEnv.step`` (SPEC A§2.1): a move off the grid or into a wall is a
        no-op; a colour counts when entered from another cell; a wrong colour terminates; the
        last colour of the task gives reward 1 and terminates; the step that brings the count to
        ``max_steps`` truncates unless it terminates.
        """
        if not self._has_reset:
            raise RuntimeError("call reset() before step()")
        actions = self._validate_actions(actions)  # (n,)
        resetting = np.flatnonzero(self._autoreset) if self._autoreset.any() else None

        # Every sub-env moves; those resetting are overwritten below (their action is ignored).
        old = self._agent_globals  # (n,)
        new = self._transitions.ravel().take(old * N_ACTIONS + actions)  # (n,)
        obs_flat = self._obs.ravel()
        obs_flat[old + self._obs_shift] = 0.0  # agent plane
        obs_flat[new + self._obs_shift] = 1.0
        self._agent_globals = new
        color = self._cell_colors.ravel().take(new)  # (n,) -1 on a colourless cell
        entered = (new != old) & (color >= 0)  # (n,) moved onto a colour
        correct = entered & (color == self._next_colors)  # (n,) never for ended envs (next colour -1)
        wrong = entered ^ correct  # (n,)
        colors_visited = self._colors_visited
        colors_visited += correct
        success = colors_visited == self._task_lengths  # (n,)
        rewards = (correct & success).astype(np.float64)  # (n,)
        terminated = wrong | success  # (n,)
        self._step_counts += 1
        truncated = (self._step_counts >= self.max_steps) & ~terminated  # (n,)
        next_colors = self._tasks.ravel().take(self._task_offsets + colors_visited)  # (n,) -1 after success
        next_colors[wrong] = NO_COLOR
        self._next_colors = next_colors

        if resetting is not None:
            self._reset_envs(resetting, None, None)
            rewards[resetting] = 0.0
            terminated[resetting] = False
            truncated[resetting] = False
            wrong[resetting] = False
        self._failed = wrong
        self._autoreset = terminated | truncated
        failure = self._no_failure.copy()  # (n,) object
        if wrong.any():
            failure[wrong] = "wrong_color"
        return self._obs.copy(), rewards, terminated, truncated, self._infos(failure)

    def _validate_actions(self, actions: object) -> np.ndarray:
        """Return ``actions`` as an ``(n,)`` intp array in ``[0, 4)`` or raise naming the bad value."""
        array = actions if isinstance(actions, np.ndarray) else np.asarray(actions)
        if array.dtype.kind not in "iu":
            raise TypeError(
                f"actions must be integers in [0, {N_ACTIONS}), got dtype {array.dtype} (actions {actions!r})"
            )
        if array.shape != (self.num_envs,):
            raise ValueError(
                f"actions must have shape ({self.num_envs},), got shape {array.shape} (actions {actions!r})"
            )
        if array.max() >= N_ACTIONS or (array.dtype.kind == "i" and array.min() < 0):
            bad = int(np.flatnonzero((array < 0) | (array >= N_ACTIONS))[0])
            raise ValueError(f"actions[{bad}] = {int(array[bad])} is not an action: actions are in [0, {N_ACTIONS})")
        return array if array.dtype == np.intp else array.astype(np.intp)

    def _infos(self, failure: np.ndarray) -> dict[str, Any]:
        """Vector ``info`` (Gymnasium convention: ``key`` array + ``_key`` mask); -1 stands for None."""
        next_colors = self._next_colors.copy()  # (n,)
        n = self.num_envs
        return {
            "success": self._colors_visited == self._task_lengths,
            "_success": np.ones(n, dtype=bool),
            "task": self._task_objects.copy(),
            "_task": np.ones(n, dtype=bool),
            "colors_visited": self._colors_visited.copy(),
            "_colors_visited": np.ones(n, dtype=bool),
            "next_color": next_colors,
            "_next_color": np.ones(n, dtype=bool),
            "subgoal": np.where(next_colors >= 0, grid_subgoal(next_colors), NO_COLOR),
            "_subgoal": np.ones(n, dtype=bool),
            "failure": failure,
            "_failure": np.ones(n, dtype=bool),
        }

    # ------------------------------------------------------------------ state
    @property
    def agent_cells(self) -> np.ndarray:
        """``(n,)`` each agent's cell, ``row * grid_size + col`` (a copy)."""
        return self._agent_globals - self._cell_base

    @property
    def colors_visited(self) -> np.ndarray:
        """``(n,)`` colours correctly visited in the current episode (a copy)."""
        return self._colors_visited.copy()

    @property
    def next_colors(self) -> np.ndarray:
        """``(n,)`` the colour each agent must enter next, -1 once the episode has ended (a copy)."""
        return self._next_colors.copy()

    @property
    def step_counts(self) -> np.ndarray:
        """``(n,)`` steps taken in the current episode (a copy)."""
        return self._step_counts.copy()

    @property
    def episode_tasks(self) -> np.ndarray:
        """``(n,)`` object array: the current task of each sub-env, as a tuple of colour ids (a copy)."""
        return self._task_objects.copy()

    @property
    def cell_colors(self) -> np.ndarray:
        """``(n, cells)`` colour id on each cell, -1 for none (a copy)."""
        return self._cell_colors.copy()

    @property
    def np_random_seed(self) -> tuple[int | None, ...]:
        """The seed of each sub-env's generator, as ``SyncVectorEnv`` reports them."""
        return tuple(self._np_random_seeds)

    def layout(self, index: int) -> GridLayout:
        """The :class:`GridLayout` of sub-env ``index``'s current episode (walls, colours, start)."""
        if isinstance(index, bool) or not isinstance(index, Integral) or not 0 <= index < self.num_envs:
            raise ValueError(f"index must be an int in [0, {self.num_envs}), got {index!r}")
        if not self._has_reset:
            raise RuntimeError("call reset() before layout()")
        return self.layout_sampler.to_layout(self._placements[index])

    def layouts(self) -> list[GridLayout]:
        """Every sub-env's :class:`GridLayout` (a Python loop: for analysis, not hot paths)."""
        return [self.layout(i) for i in range(self.num_envs)]

    # -------------------------------------------------------------- rendering
    def render(self) -> np.ndarray | None:
        """Sub-env 0 as an ``H x W x 3`` uint8 image (``render_mode="rgb_array"``), else None."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array'")
            return None
        if not self._has_reset:
            raise RuntimeError("call reset() before render()")
        if self._renderer is None:
            from hier_envs.rendering import GridRenderer

            self._renderer = GridRenderer(self.grid_size, self.n_colors, self.render_mode, self.metadata["render_fps"])
        progress = TaskProgress(self._task_objects[0], int(self._colors_visited[0]), bool(self._failed[0]))
        agent = divmod(int(self.agent_cells[0]), self.grid_size)
        return self._renderer.draw(self.layout(0), agent, progress, int(self._step_counts[0]), self.max_steps)

    def close_extras(self, **kwargs: Any) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_renderer"] = None  # windows and surfaces are not copied; a copy opens its own
        return state
