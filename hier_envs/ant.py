"""``HierAnt``: the MuJoCo ant pinpad of Kobayashi et al. 2025 (SPEC A§2.2, B2).

The arena is the gridworld pinpad laid on the floor: a G×G grid of square cells, some
coloured, some walls. The robot is Gymnasium's Ant-v5 ant (its ``ant.xml`` asset, loaded from
the installed Gymnasium package), and the MJCF of the arena is built in memory and compiled
once per env; every reset only recolours the floor tiles and moves the wall blocks (SPEC §9.2
item 13). Layouts come from the grid's :class:`~hier_envs.grid_layout.LayoutSampler`, so the
same solvability rule holds for both worlds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from hier_envs.ant_arena import (
    CAMERA_NAME,
    WALL_BLOCK_HEIGHT,
    build_arena_xml,
    offscreen_renderer,
    passive_viewer,
    tile_rgba,
)
from hier_envs.episode_start import draw_layout_and_task, parse_reset_options
from hier_envs.grid_layout import GridLayout, LayoutSampler
from hier_envs.tasks import ANT_POSTTRAIN_TASK, TaskProgress, resolve_tasks

RENDER_MODES = ("human", "rgb_array")

HEALTHY_Z_RANGE: tuple[float, float] = (0.2, 1.0)
"""Torso-height interval outside which the ant has fallen (SPEC A§2.2; Ant-v5's default)."""
INIT_TORSO_Z = 0.75
"""Torso height at reset, as in Ant-v5."""
RESET_NOISE_SCALE = 0.1
"""Joint angles and all velocities start uniform in ±this (SPEC A§2.2 "Initial state" 5)."""
START_MARGIN = 0.4
"""Minimum distance (m) from the start torso position to the start cell's edges: more than the
torso radius (0.25 m), so the torso never starts inside the boundary, and enough that the
settling ant does not slip into a neighbouring cell on its first steps (INFERRED)."""
ANT_CELL_WALL = -2
ANT_CELL_FREE = -1


def symlog(x: np.ndarray) -> np.ndarray:
    """``sign(x) · log(1 + |x|)``: squashes large proprioceptive values (SPEC A§2.2)."""
    return np.sign(x) * np.log1p(np.abs(x))


def validate_ant_action(action: object, n_actions: int) -> np.ndarray:
    """Return ``action`` as a float64 ``(n_actions,)`` array clipped to [-1, 1], or raise naming it.

    Numbers of any int/float dtype are accepted; strings, booleans, objects, wrong shapes and
    NaN/inf are rejected. Values outside [-1, 1] are clipped, exactly what MuJoCo's ``ctrlrange``
    does to Ant-v5's actions.
    """
    if isinstance(action, (str, bytes, dict)):
        raise TypeError(f"action must be {n_actions} numbers, got {action!r}")
    try:
        array = np.asarray(action)
    except (TypeError, ValueError) as err:
        raise TypeError(f"action must be {n_actions} numbers, got {action!r}") from err
    if array.dtype.kind not in "iuf":
        raise TypeError(f"action must be numeric, got {action!r} with dtype {array.dtype}")
    if array.shape != (n_actions,):
        raise ValueError(f"action must have shape ({n_actions},), got shape {array.shape}: {action!r}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"action must be finite, got {action!r}")
    return np.clip(array, -1.0, 1.0, dtype=np.float64)


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


class HierAntEnv(gym.Env):
    """Walk the MuJoCo ant over coloured floor cells in a given order, with one sparse reward.

    ## Description
    The ant pinpad (SPEC A§2.2). Gymnasium's Ant-v5 quadruped stands on a ``grid_size`` ×
    ``grid_size`` = 4×4 grid of square floor cells, ``cell_size`` = 2 m wide (an 8 m × 8 m arena
    centred on the origin). ``n_colors`` = 4 cells are coloured (ids 0–3, drawn red, orange,
    yellow, green), ``n_walls`` = 1 cell is a wall (dark block). Each reset samples the layout
    (colours, walls and start cell without overlap) and a task, a sequence of colours to visit
    in order. Layouts are solvable as in the grid (:mod:`hier_envs.grid_layout`): the free cells
    are connected and touch every colour, so the ant can reach each colour without crossing
    another one or a wall. With 1 wall on 4×4 the non-wall cells are always connected.

    Cell ``(row, col)`` has centre ``x = (col + ½)·s − H``, ``y = H − (row + ½)·s`` (``s`` the cell
    size, ``H = G·s/2`` the arena half-size): row 0 is the top row (+y) of the top-down
    rendering, column 0 its left column (−x), matching the grid env's printouts. The torso
    centre's cell is the cell containing ``data.qpos[0:2]``.

    Design choices the paper leaves open (SPEC §9.1 item 8), all INFERRED:
    - **Model**: Gymnasium's ``ant.xml`` (RK4, timestep 0.01 s), frame skip 5, so one env step is
      0.05 s as in Ant-v5 and T = 500 steps are 25 s.
    - **Cell size** 2 m: the ant's legs span about 1.6 m, and a walking ant covers the
      4-colour post-training task (about 10 cells on average) in the 25 s budget.
    - **Walls** have no physical geometry: a visual block marks the cell and the episode
      terminates when the torso centre enters it (SPEC A§2.2 "terminates instantly").
    - **Arena boundary**: invisible planes on the arena's edges that touch the torso sphere
      only (drawn as translucent grey walls), so the torso centre can never leave the 4×4 grid —
      the analogue of the grid's "moving off the grid is a no-op". Legs may reach over them,
      so an ant starting next to the edge never starts inside a wall.
    - **Visits** are checked once per env step (every 0.05 s), on the torso centre's cell.

    ## Action Space
    ``Box(-1, 1, (8,), float32)``: torques on the 8 hinges, in Ant-v5's order (hip_4, ankle_4,
    hip_1, ankle_1, hip_2, ankle_2, hip_3, ankle_3), gear 150. Any int/float array of shape (8,)
    is accepted; values outside [-1, 1] are clipped (as MuJoCo's ``ctrlrange`` clamps them in
    Ant-v5). Wrong shapes, NaN/inf, strings or other non-numeric values raise ``ValueError`` /
    ``TypeError`` and leave the state unchanged.

    ## Observation Space
    ``Box(float32)`` of ``27 + 2 + 2·(n_colors + n_walls) + 2`` = 41 values (SPEC A§2.2), named by
    :attr:`observation_structure` (name → slice):

    | slice | name | content |
    |---|---|---|
    | 0:13 | ``qpos`` | symlog of torso z, torso quaternion (w, x, y, z), 8 joint angles — Ant-v5's ``qpos`` part |
    | 13:27 | ``qvel`` | symlog of torso linear velocity (world), angular velocity (torso frame), 8 joint velocities |
    | 27:29 | ``global_xy`` | torso (x, y) / H, in [-1, 1] |
    | 29:37 | ``color_offsets`` | for colours 0…3: (cell centre − torso xy) / (2H), world axes, in (-1, 1) |
    | 37:39 | ``wall_offsets`` | the same for each wall cell (row-major order) |
    | 39:41 | ``local_xy`` | (torso xy − centre of its cell) / (s/2), in [-1, 1] |

    The proprioception is Ant-v5's default 27 values *without* contact forces (``cfrc_ext``):
    they are noisy, mostly zero and 78 more dimensions. Relative positions use world axes, not
    the ant's frame; the heading is in the quaternion. There is no task descriptor and no
    visited flag (SPEC B2): the observation alone does not say which colour comes next.

    ## Rewards
    1.0 on the step that completes the whole task, else 0.0 (SPEC A§2.2; no shaping).

    ## Episode End
    ``terminated`` when, after a step,
    1. the torso height leaves [0.2, 1.0] or the simulation state is not finite (``"fell"``);
    2. the torso centre is in a wall cell (``"wall"``);
    3. the torso centre entered a colour's cell from another cell and it is not the next colour
       (``"wrong_color"``) — entering the next colour counts it as visited;
    4. the last colour of the task was visited (success).
    The checks run in this order, so a fallen ant earns nothing. ``truncated`` on the step that
    brings the step count to ``max_steps`` (500) unless that step terminates (SPEC B2.1).
    Stepping a finished episode raises ``RuntimeError``.

    ## Starting State
    The torso x, y is the start cell's centre plus uniform noise keeping it at least 0.4 m inside
    the cell, at height 0.75 m, with uniform random yaw; joint angles and all velocities are
    uniform in ±0.1 (SPEC A§2.2 "Initial state"). All draws use ``self.np_random``.

    ## Arguments
    - ``task`` (sequence of int, default the post-training task 0-1-2-3): the task of every episode.
    - ``tasks`` (sequence of tasks): instead of ``task``, draw one uniformly on each reset.
    - ``grid_size`` (4), ``n_colors`` (4), ``n_walls`` (1), ``max_steps`` (500).
    - ``cell_size`` (2.0): cell width in metres (at least 1.0).
    - ``frame_skip`` (5): MuJoCo steps of 0.01 s per env step.
    - ``render_mode``: ``"rgb_array"`` (top-down ``(height, width, 3)`` uint8 frames through
      MuJoCo's offscreen renderer; headless needs ``MUJOCO_GL=egl`` or ``osmesa`` set before
      MuJoCo is imported), ``"human"`` (MuJoCo's passive viewer; needs a display) or ``None``.
    - ``width``, ``height`` (480): size of ``rgb_array`` frames.
    - ``default_tasks`` (sequence of tasks, default ``None``): the pool used when neither
      ``task`` nor ``tasks`` is given; the registered ids set it (SPEC B2), so a user's ``task``
      or ``tasks`` replaces the id's choice (:func:`~hier_envs.tasks.resolve_tasks`).

    ``reset(seed=..., options={"task": [...], "layout": GridLayout | dict})`` pins the task or
    the layout (walls, colours and start cell as (row, col) pairs) for that episode; a bad one
    raises and the env stays usable.

    ## Info
    On reset and on every step: ``success`` (bool), ``task`` (tuple of colour ids),
    ``colors_visited`` (int), ``next_color`` (int; ``None`` after success or a wrong colour),
    ``subgoal`` (the ground-truth abstract action, which for the ant is ``next_color`` itself —
    for analysis only, never an agent input), ``failure`` (``None``, ``"wrong_color"``,
    ``"wall"`` or ``"fell"``), plus ``x_position``, ``y_position`` (torso, m) and ``cell``
    ((row, col) of the torso centre) for analysis.
    """

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": 20}

    def __init__(
        self,
        task: Sequence[int] | None = None,
        tasks: Sequence[Sequence[int]] | None = None,
        grid_size: int = 4,
        n_colors: int = 4,
        n_walls: int = 1,
        max_steps: int = 500,
        cell_size: float = 2.0,
        frame_skip: int = 5,
        render_mode: str | None = None,
        width: int = 480,
        height: int = 480,
        default_tasks: Sequence[Sequence[int]] | None = None,
    ) -> None:
        self.grid_size = _check_int("grid_size", grid_size, 2)
        self.n_colors = _check_int("n_colors", n_colors, 1)
        self.n_walls = _check_int("n_walls", n_walls, 0)
        self.max_steps = _check_int("max_steps", max_steps, 1)
        self.frame_skip = _check_int("frame_skip", frame_skip, 1)
        self.width = _check_int("width", width, 1)
        self.height = _check_int("height", height, 1)
        if isinstance(cell_size, bool) or not isinstance(cell_size, Real) or not 1.0 <= cell_size < math.inf:
            raise ValueError(f"cell_size must be a finite number of metres >= 1.0, got {cell_size!r}")
        if render_mode is not None and render_mode not in RENDER_MODES:
            raise ValueError(f"render_mode must be one of {RENDER_MODES} or None, got {render_mode!r}")
        self.tasks = resolve_tasks(task, tasks, self.n_colors, ANT_POSTTRAIN_TASK, default_tasks)
        self.layout_sampler = LayoutSampler(self.grid_size, self.n_colors, self.n_walls)
        self.cell_size = float(cell_size)
        self.arena_half = self.grid_size * self.cell_size / 2
        self.render_mode = render_mode

        self._xml = build_arena_xml(self.grid_size, self.n_walls, self.cell_size, self.width, self.height)
        self._load_model()
        self.dt = float(self.model.opt.timestep) * self.frame_skip
        self.metadata = {**type(self).metadata, "render_fps": int(round(1.0 / self.dt))}

        ctrl_range = self.model.actuator_ctrlrange.astype(np.float32)
        self.action_space = spaces.Box(ctrl_range[:, 0], ctrl_range[:, 1], dtype=np.float32)
        n_qpos, n_qvel = self.model.nq - 2, self.model.nv
        n_targets = self.n_colors + self.n_walls
        parts = {
            "qpos": n_qpos,
            "qvel": n_qvel,
            "global_xy": 2,
            "color_offsets": 2 * self.n_colors,
            "wall_offsets": 2 * self.n_walls,
            "local_xy": 2,
        }
        # Name → slice of each observation part (like Ant-v5's ``observation_structure``).
        self.observation_structure: dict[str, slice] = {}
        start = 0
        for name, size in parts.items():
            self.observation_structure[name] = slice(start, start + size)
            start += size
        self._n_proprio = n_qpos + n_qvel
        low = np.full(start, -1.0, dtype=np.float32)
        low[: self._n_proprio] = -np.inf
        self.observation_space = spaces.Box(low, -low, dtype=np.float32)
        self._obs_buffer = np.empty(start, dtype=np.float64)
        self._targets_slice = slice(self._n_proprio + 2, self._n_proprio + 2 + 2 * n_targets)

        rows, cols = np.divmod(np.arange(self.grid_size**2), self.grid_size)
        self._cell_centers = np.stack(
            [(cols + 0.5) * self.cell_size - self.arena_half, self.arena_half - (rows + 0.5) * self.cell_size], axis=1
        )  # (cells, 2)
        self._renderer: Any = None
        self._viewer: Any = None
        self.layout: GridLayout | None = None
        self.progress: TaskProgress | None = None
        self.step_count = 0
        self.agent_cell = -1
        self._ended = False

    def _load_model(self) -> None:
        """Compile the stored MJCF (once per env, and once per unpickled copy) and find its ids."""
        self.model = mujoco.MjModel.from_xml_string(self._xml)
        self.data = mujoco.MjData(self.model)
        geom = mujoco.mjtObj.mjOBJ_GEOM
        cells = [divmod(cell, self.grid_size) for cell in range(self.grid_size**2)]
        self._tile_ids = np.array([mujoco.mj_name2id(self.model, geom, f"tile_{r}_{c}") for r, c in cells])
        walls = [mujoco.mj_name2id(self.model, geom, f"wall_block_{i}") for i in range(self.n_walls)]
        self._wall_block_ids = np.array(walls, dtype=np.int64)
        self._bad_qacc_warning = int(mujoco.mjtWarning.mjWARN_BADQACC)

    # ------------------------------------------------------------------ reset
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        # Options first, then the seed: a rejected reset leaves the generator untouched (SPEC B2.1).
        pinned_task, pinned_layout = parse_reset_options(options, self.n_colors, self.layout_sampler)
        super().reset(seed=seed)
        layout, task = draw_layout_and_task(self.layout_sampler, self.tasks, self.np_random, pinned_task, pinned_layout)
        self._start_episode(layout, task)
        self._place_ant()
        if self.render_mode == "human":
            self.render()
        return self._observation(), self._info(None)

    def _start_episode(self, layout: GridLayout, task: tuple[int, ...]) -> None:
        self.layout = layout
        self.progress = TaskProgress(task)
        self.step_count = 0
        self._ended = False
        cell_content = np.full(self.grid_size**2, ANT_CELL_FREE, dtype=np.int64)
        cell_content[layout.wall_cells()] = ANT_CELL_WALL
        cell_content[layout.color_cells()] = np.arange(self.n_colors)
        self._cell_content = cell_content.tolist()
        self._target_centers = self._cell_centers[layout.color_cells() + layout.wall_cells()]  # (targets, 2)
        self._apply_layout_to_model()

    def _apply_layout_to_model(self) -> None:
        """Recolour the tiles and move the wall blocks: no recompiling (SPEC §9.2 item 13)."""
        layout = self.layout
        assert layout is not None
        self.model.geom_rgba[self._tile_ids] = tile_rgba(layout)
        for block, cell in zip(self._wall_block_ids, layout.wall_cells()):
            self.model.geom_pos[block] = (*self._cell_centers[cell], WALL_BLOCK_HEIGHT / 2)

    def _place_ant(self) -> None:
        """Start state of SPEC A§2.2: start-cell centre + in-cell noise, random yaw, ±0.1 joints."""
        assert self.layout is not None
        rng = self.np_random
        model, data = self.model, self.data
        mujoco.mj_resetData(model, data)
        start_cell = self.layout.agent_cell()
        spread = self.cell_size / 2 - START_MARGIN
        x, y = self._cell_centers[start_cell] + rng.uniform(-spread, spread, size=2)
        yaw = rng.uniform(-math.pi, math.pi)
        qpos = np.zeros(model.nq)
        qpos[:7] = (x, y, INIT_TORSO_Z, math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))
        qpos[7:] = rng.uniform(-RESET_NOISE_SCALE, RESET_NOISE_SCALE, size=model.nq - 7)
        data.qpos[:] = qpos
        data.qvel[:] = rng.uniform(-RESET_NOISE_SCALE, RESET_NOISE_SCALE, size=model.nv)
        mujoco.mj_forward(model, data)
        self.agent_cell = start_cell

    # ------------------------------------------------------------------- step
    def step(self, action: object):
        if self.progress is None:
            raise RuntimeError("call reset() before step()")
        ctrl = validate_ant_action(action, self.model.nu)
        if self._ended or self.step_count >= self.max_steps:
            raise RuntimeError("the episode has ended; call reset() before step()")
        data = self.data
        bad_qacc_before = data.warning[self._bad_qacc_warning].number
        data.ctrl[:] = ctrl
        mujoco.mj_step(self.model, data, nstep=self.frame_skip)
        self.step_count += 1

        x, y, z = data.qpos[0], data.qpos[1], data.qpos[2]
        previous_cell, cell = self.agent_cell, self.cell_index(x, y)
        self.agent_cell = cell
        reward, failure = 0.0, None
        low, high = HEALTHY_Z_RANGE
        if (
            not low <= z <= high
            or data.warning[self._bad_qacc_warning].number != bad_qacc_before
            or not (np.isfinite(data.qpos).all() and np.isfinite(data.qvel).all())
        ):
            failure = "fell"
        elif cell != previous_cell:
            content = self._cell_content[cell]
            if content == ANT_CELL_WALL:
                failure = "wall"
            elif content >= 0:
                if not self.progress.enter(content):
                    failure = "wrong_color"
                elif self.progress.success:
                    reward = 1.0
        terminated = failure is not None or self.progress.success
        self._ended = terminated
        truncated = not terminated and self.step_count >= self.max_steps
        if self.render_mode == "human":
            self.render()
        return self._observation(), reward, terminated, truncated, self._info(failure)

    def _observation(self) -> np.ndarray:
        qpos, qvel = self.data.qpos, self.data.qvel
        obs = self._obs_buffer
        n_qpos = qpos.size - 2
        obs[:n_qpos] = qpos[2:]
        obs[n_qpos : self._n_proprio] = qvel
        obs[: self._n_proprio] = symlog(obs[: self._n_proprio])
        xy = qpos[:2]
        obs[self._n_proprio : self._n_proprio + 2] = np.clip(xy / self.arena_half, -1.0, 1.0)
        obs[self._targets_slice] = ((self._target_centers - xy) / (2 * self.arena_half)).ravel()
        local = (xy - self._cell_centers[self.cell_index(xy[0], xy[1])]) / (self.cell_size / 2)
        obs[-2:] = np.clip(local, -1.0, 1.0)
        return obs.astype(np.float32)

    def _info(self, failure: str | None) -> dict[str, Any]:
        progress = self.progress
        assert progress is not None
        next_color = progress.next_color
        x, y = float(self.data.qpos[0]), float(self.data.qpos[1])
        return {
            "success": progress.success,
            "task": progress.task,
            "colors_visited": progress.colors_visited,
            "next_color": next_color,
            "subgoal": next_color,
            "failure": failure,
            "x_position": x,
            "y_position": y,
            "cell": divmod(self.agent_cell, self.grid_size),
        }

    # ------------------------------------------------------------- geometry
    def cell_index(self, x: float, y: float) -> int:
        """Row-major index of the cell containing world point (x, y), clamped to the arena."""
        last = self.grid_size - 1
        col = min(max(int(math.floor((x + self.arena_half) / self.cell_size)), 0), last)
        row = min(max(int(math.floor((self.arena_half - y) / self.cell_size)), 0), last)
        return row * self.grid_size + col

    def cell_center(self, row: int, col: int) -> tuple[float, float]:
        """World (x, y) of the centre of cell (row, col)."""
        x, y = self._cell_centers[row * self.grid_size + col]
        return float(x), float(y)

    @property
    def torso_position(self) -> np.ndarray:
        """Torso centre (x, y, z) in metres (a copy)."""
        return self.data.qpos[:3].copy()

    # -------------------------------------------------------------- rendering
    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array' or 'human'")
            return None
        if self.layout is None:
            raise RuntimeError("call reset() before render()")
        if self.render_mode == "rgb_array":
            if self._renderer is None:
                self._renderer = offscreen_renderer(self.model, self.height, self.width)
            self._renderer.update_scene(self.data, camera=CAMERA_NAME)
            return self._renderer.render()
        if self._viewer is None:
            self._viewer = passive_viewer(self.model, self.data)
        if self._viewer.is_running():
            self._viewer.sync()
        return None

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        if self._viewer is not None:
            self._viewer.close()
            self._viewer = None

    # ----------------------------------------------------------------- copies
    def __getstate__(self) -> dict[str, Any]:
        """Picklable state: the MJCF text and MuJoCo's full integration state, not the live objects.

        A copy recompiles the stored XML and restores qpos, qvel, act, ctrl, time and the solver
        warm start, so it continues bit-identically (SPEC B2.1 "Copies").
        """
        state = self.__dict__.copy()
        for live in ("model", "data", "_renderer", "_viewer"):
            state.pop(live, None)
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        mj_state = np.empty(mujoco.mj_stateSize(self.model, spec))
        mujoco.mj_getState(self.model, self.data, mj_state, spec)
        state["_mj_state"] = mj_state
        state["_mj_warnings"] = [int(w.number) for w in self.data.warning]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        mj_state = state.pop("_mj_state")
        warnings = state.pop("_mj_warnings")
        self.__dict__.update(state)
        self._renderer = None
        self._viewer = None
        self._load_model()
        mujoco.mj_setState(self.model, self.data, mj_state, mujoco.mjtState.mjSTATE_INTEGRATION)
        for warning, number in zip(self.data.warning, warnings):
            warning.number = number
        if self.layout is not None:
            self._apply_layout_to_model()
        mujoco.mj_forward(self.model, self.data)
