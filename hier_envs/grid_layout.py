"""Grid pinpad layouts: geometry, solvable sampling and the transition table.

Shared by :mod:`hier_envs.grid` and :mod:`hier_envs.grid_vector` so that both draw the same
layout from the same random stream (SPEC B2.1: a batched run and N single envs with the same
seeds agree exactly).

Cells are numbered row-major, ``cell = row * grid_size + col``. Actions are
``0 = up (row - 1), 1 = right (col + 1), 2 = down (row + 1), 3 = left (col - 1)``; a move off
the grid or into a wall is a no-op (SPEC A§2.1).

Solvability (SPEC A§2.1 INFERRED, B2 binding): a layout is accepted only if the *free* cells
(neither wall nor colour) form one 4-connected region and every colour cell touches it. Then
every colour can be reached from every cell without crossing another colour, so every task
over these colours is solvable, and every non-wall cell is reachable. Rejected candidates are
redrawn from the same stream. The single env checks one candidate with a flood fill on a
Python-int bitmask (row stride ``grid_size + 1``, so horizontal shifts cannot wrap; any grid
size); the batched env checks many at once with an equivalent row-sweep automaton
(``grid_size <= 7``); tests check that both agree. A configuration with no solvable layout
(e.g. 3 colours on a 2x2 grid) is refused with a ``ValueError`` when its sampler is built, and a
draw gives up with an error after :data:`MAX_LAYOUT_CANDIDATES` rejections instead of looping
forever; neither check changes which layouts a valid configuration draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from numbers import Integral
from typing import Any

import numpy as np

ACTION_NAMES: tuple[str, ...] = ("up", "right", "down", "left")
"""Action ids 0..3, one per cardinal direction (SPEC A§2.1)."""

ACTION_DELTAS: tuple[tuple[int, int], ...] = ((-1, 0), (0, 1), (1, 0), (0, -1))
"""(row, col) displacement of each action."""

MAX_BATCHED_GRID_SIZE = 7
"""Largest grid whose bitmask (stride G + 1) fits in a uint64 word for the batched check."""

SOLVABILITY_PROBE_CANDIDATES = 10_000
"""Candidates :class:`LayoutSampler` tries at construction, from its own fixed generator, before
it refuses a configuration as having no solvable layout (e.g. 3 colours on a 2x2 grid, whose one
free cell touches only 2 others). The paper's configurations pass on the first few (SPEC B2)."""

MAX_LAYOUT_CANDIDATES = 100_000
"""Candidates one layout draw may take before :meth:`LayoutSampler.sample` gives up with an error
instead of looping forever. It never binds for a configuration with a usable acceptance rate
(the 7x7 grid accepts about 44 %, so 100,000 rejections in a row have probability ~1e-25000);
reaching it means the configuration, though it passed the construction probe, is too
constrained to sample."""


@dataclass(frozen=True)
class GridLayout:
    """Where the walls, the colours and the agent's start are, as (row, col) cells.

    ``colors[k]`` is the cell of colour ``k``. Walls are kept sorted row-major so that wall
    plane ``i`` of the observation is the ``i``-th wall in reading order.
    """

    grid_size: int
    walls: tuple[tuple[int, int], ...]
    colors: tuple[tuple[int, int], ...]
    agent: tuple[int, int]

    def wall_cells(self) -> list[int]:
        return [r * self.grid_size + c for r, c in self.walls]

    def color_cells(self) -> list[int]:
        return [r * self.grid_size + c for r, c in self.colors]

    def agent_cell(self) -> int:
        return self.agent[0] * self.grid_size + self.agent[1]


def base_transitions(grid_size: int) -> np.ndarray:
    """``(cells, 4)`` table of the cell reached by each action on an empty grid."""
    rows, cols = np.divmod(np.arange(grid_size * grid_size), grid_size)
    table = np.empty((grid_size * grid_size, 4), dtype=np.int64)
    for action, (d_row, d_col) in enumerate(ACTION_DELTAS):
        new_rows, new_cols = rows + d_row, cols + d_col
        inside = (new_rows >= 0) & (new_rows < grid_size) & (new_cols >= 0) & (new_cols < grid_size)
        table[:, action] = np.where(inside, new_rows * grid_size + new_cols, rows * grid_size + cols)
    return table


def transitions_with_walls(base: np.ndarray, is_wall: np.ndarray) -> np.ndarray:
    """Apply walls to the base table: moving into a wall is a no-op.

    ``base`` is ``(cells, 4)``; ``is_wall`` is ``(cells,)`` or ``(batch, cells)``; the result has
    the matching leading batch axis.
    """
    cells = np.arange(base.shape[0])[:, None]
    if is_wall.ndim == 1:
        return np.where(is_wall[base], cells, base)
    blocked = np.take_along_axis(is_wall, base.reshape(1, -1), axis=1).reshape(-1, *base.shape)
    return np.where(blocked, cells[None], base[None])


def _bit_positions(grid_size: int) -> np.ndarray:
    """Bit index of every cell in a mask with row stride ``grid_size + 1``."""
    rows, cols = np.divmod(np.arange(grid_size * grid_size), grid_size)
    return rows * (grid_size + 1) + cols


def _dilate(mask: Any, stride: int) -> Any:
    return mask | (mask << 1) | (mask >> 1) | (mask << stride) | (mask >> stride)


def layout_is_solvable(free_mask: int, color_mask: int, stride: int) -> bool:
    """Bitmask solvability check of one layout (Python ints).

    Flood-fills the free region from its lowest cell and requires that it covers every free
    cell and touches every colour cell.
    """
    reach = free_mask & (~free_mask + 1)  # lowest set bit
    while True:
        grown = _dilate(reach, stride) & free_mask
        if grown == reach:
            break
        reach = grown
    touched = _dilate(reach, stride)
    return (reach == free_mask) & ((color_mask & ~touched) == 0)


# Batched solvability: a row-sweep automaton, exactly equivalent to the flood fill above.
_EMPTY, _DONE, _FAIL = 0, 1, 2
"""Automaton states: no free cell yet; the one component ended; disconnected."""


def _row_runs(pattern: int, width: int) -> list[int]:
    """Maximal horizontal runs of set bits of a row ``pattern``, each as a bitmask."""
    runs, col = [], 0
    while col < width:
        if pattern >> col & 1:
            start = col
            while col < width and pattern >> col & 1:
                col += 1
            runs.append((1 << col) - (1 << start))
        else:
            col += 1
    return runs


@lru_cache(maxsize=None)
def connectivity_automaton(width: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-sweep automaton deciding whether the free cells of a grid form one 4-connected region.

    Rows are read top to bottom as ``width``-bit patterns (bit ``c`` = column ``c`` is free). An
    active state is the last row's pattern plus which of its runs are already connected through
    the rows above; a component that does not continue into a non-empty next row can never
    reach the other cells, so the sweep fails. Returns ``(table, accept)``: ``table[state,
    pattern]`` is the next state, ``(states, 2**width)``; ``accept[state]`` says the cells read
    so far are connected (an empty grid counts as connected, as in ``layout_is_solvable``).
    Built once per width by breadth-first search (325 states for width 7, ~0.1 s).
    """
    keys: list[tuple[int, tuple[int, ...]] | None] = [None, None, None]  # _EMPTY, _DONE, _FAIL
    index: dict[tuple[int, tuple[int, ...]], int] = {}

    def state_id(key: tuple[int, tuple[int, ...]]) -> int:
        if key not in index:
            index[key] = len(keys)
            keys.append(key)
        return index[key]

    def transition(state: int, pattern: int) -> int:
        if state == _FAIL:
            return _FAIL
        runs = _row_runs(pattern, width)
        if state == _EMPTY:
            return _EMPTY if pattern == 0 else state_id((pattern, tuple(range(len(runs)))))
        if state == _DONE:
            return _DONE if pattern == 0 else _FAIL
        previous, labels = keys[state]  # type: ignore[misc]
        n_components = max(labels) + 1
        if pattern == 0:
            return _DONE if n_components == 1 else _FAIL
        parent = list(range(n_components + len(runs)))  # components, then the new row's runs

        def find(node: int) -> int:
            while parent[node] != node:
                node = parent[node]
            return node

        for j, run in enumerate(runs):
            for label, previous_run in zip(labels, _row_runs(previous, width)):
                if run & previous_run:
                    parent[find(label)] = find(n_components + j)
        roots = [find(n_components + j) for j in range(len(runs))]
        if any(find(component) not in roots for component in range(n_components)):
            return _FAIL
        relabel: dict[int, int] = {}
        return state_id((pattern, tuple(relabel.setdefault(root, len(relabel)) for root in roots)))

    table: list[list[int]] = []
    while len(table) < len(keys):
        table.append([transition(len(table), pattern) for pattern in range(1 << width)])
    accept = np.array([key is None or max(key[1]) == 0 for key in keys])
    accept[_FAIL] = False
    return np.array(table, dtype=np.intp), accept



@dataclass(frozen=True)
class LayoutSampler:
    """Draws solvable layouts from a generator; one draw per candidate (SPEC B2.1).

    Each candidate is ``rng.permutation(cells)``: the first ``n_walls`` entries are walls, the
    next ``n_colors`` the colours in colour order, the next one the agent's start.
    """

    grid_size: int
    n_colors: int
    n_walls: int

    def __post_init__(self) -> None:
        cells = self.grid_size * self.grid_size
        needed = self.n_walls + self.n_colors + 1
        if needed > cells:
            raise ValueError(
                f"{self.n_walls} walls + {self.n_colors} colours + the agent need {needed} cells, "
                f"but a {self.grid_size}x{self.grid_size} grid has only {cells}"
            )
        stride = self.grid_size + 1
        object.__setattr__(self, "_stride", stride)
        bits = _bit_positions(self.grid_size)
        object.__setattr__(self, "_bits_py", [1 << int(b) for b in bits])
        if self.grid_size <= MAX_BATCHED_GRID_SIZE:
            self._init_batched_check()
        object.__setattr__(self, "_all_cells_py", sum(self._bits_py))
        if not _has_solvable_layout(self):
            raise ValueError(
                f"no solvable layout for {self.n_walls} walls and {self.n_colors} colours on a "
                f"{self.grid_size}x{self.grid_size} grid: none of {SOLVABILITY_PROBE_CANDIDATES} random "
                f"candidates left the {cells - self.n_walls - self.n_colors} free cells connected and "
                "touching every colour; use fewer colours or walls, or a larger grid"
            )

    @property
    def n_cells(self) -> int:
        return self.grid_size * self.grid_size

    def draw_candidate(self, rng: np.random.Generator) -> np.ndarray:
        """One candidate placement: ``(n_walls + n_colors + 1,)`` distinct cell ids."""
        return rng.permutation(self.n_cells)[: self.n_walls + self.n_colors + 1]

    def candidate_ok(self, placement: np.ndarray) -> bool:
        """Solvability of one candidate, with Python-int bitmasks (any grid size)."""
        bits = self._bits_py
        walls = 0
        for cell in placement[: self.n_walls]:
            walls |= bits[cell]
        colors = 0
        for cell in placement[self.n_walls : self.n_walls + self.n_colors]:
            colors |= bits[cell]
        free = self._all_cells_py & ~walls & ~colors
        return bool(layout_is_solvable(free, colors, self._stride))

    def _init_batched_check(self) -> None:
        """Tables for :meth:`candidates_ok`: one byte per grid row in a uint64 word."""
        size = self.grid_size
        rows, cols = np.divmod(np.arange(self.n_cells), size)
        row_bits = np.left_shift(np.uint64(1), (rows * 8 + cols).astype(np.uint64))  # (cells,) byte r = row r
        neighbor_bits = np.zeros(self.n_cells, dtype=np.uint64)  # (cells,) the in-grid 4-neighbours
        for d_row, d_col in ((-1, 0), (0, 1), (1, 0), (0, -1)):
            inside = (rows + d_row >= 0) & (rows + d_row < size) & (cols + d_col >= 0) & (cols + d_col < size)
            neighbor_bits[inside] |= row_bits[((rows + d_row) * size + cols + d_col)[inside]]
        table, accept = connectivity_automaton(size)
        n_patterns = 1 << size
        # table_scaled[s * n_patterns + pattern] = next state * n_patterns: one add + take per row
        object.__setattr__(self, "_table_scaled", (table * n_patterns).ravel())
        object.__setattr__(self, "_accept", accept)
        object.__setattr__(self, "_pattern_bits", size)
        object.__setattr__(self, "_row_bits", row_bits)
        object.__setattr__(self, "_neighbor_bits", neighbor_bits)
        object.__setattr__(self, "_all_row_bits", np.bitwise_or.reduce(row_bits))


    def candidates_ok(self, placements: np.ndarray) -> np.ndarray:
        """Solvability of ``(batch, k)`` candidates at once (batched env; ``grid_size <= 7``).

        Same rule as :meth:`candidate_ok`: connectivity of the free cells comes from
        :func:`connectivity_automaton` over one byte per row, and colour contact from each colour
        cell's neighbour mask (tested equal to the flood fill).
        """
        if self.grid_size > MAX_BATCHED_GRID_SIZE:
            raise ValueError(
                f"the batched check supports grid_size <= {MAX_BATCHED_GRID_SIZE}, got {self.grid_size}"
            )
        n_walls, n_colors = self.n_walls, self.n_colors
        blocked = np.bitwise_or.reduce(self._row_bits.take(placements[:, : n_walls + n_colors]), axis=1)  # (batch,)
        free = self._all_row_bits ^ blocked  # (batch,)
        row_patterns = free.astype("<u8", copy=False).view(np.uint8).reshape(-1, 8)  # (batch, 8) byte r = row r
        table = self._table_scaled
        state = table.take(row_patterns[:, 0].astype(np.intp))  # (batch,) from _EMPTY (state 0)
        for row in range(1, self.grid_size):
            state = table.take(state + row_patterns[:, row])
        connected = self._accept.take(state >> self._pattern_bits)  # (batch,)
        color_neighbors = self._neighbor_bits.take(placements[:, n_walls : n_walls + n_colors])  # (batch, colours)
        touches_free = ((color_neighbors & free[:, None]) != 0).all(axis=1)  # (batch,)
        return connected & touches_free

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """Draw candidates until one is solvable; returns the accepted placement.

        Raises ``RuntimeError`` naming the sizes after :data:`MAX_LAYOUT_CANDIDATES` rejections
        rather than looping forever (the cap does not change which layout is drawn).
        """
        for _ in range(MAX_LAYOUT_CANDIDATES):
            placement = self.draw_candidate(rng)
            if self.candidate_ok(placement):
                return placement
        raise RuntimeError(self._too_constrained_message())

    def sample_many(self, rngs: Sequence[np.random.Generator]) -> np.ndarray:
        """One accepted placement per generator, consuming each stream exactly as :meth:`sample`
        (with the same cap on candidates per generator)."""
        placements = np.stack([self.draw_candidate(rng) for rng in rngs])
        pending = np.flatnonzero(~self.candidates_ok(placements))
        candidates_drawn = 1  # per pending generator
        while pending.size:
            if candidates_drawn >= MAX_LAYOUT_CANDIDATES:
                raise RuntimeError(self._too_constrained_message())
            placements[pending] = np.stack([self.draw_candidate(rngs[i]) for i in pending])
            pending = pending[~self.candidates_ok(placements[pending])]
            candidates_drawn += 1
        return placements

    def _too_constrained_message(self) -> str:
        return (
            f"no solvable layout in {MAX_LAYOUT_CANDIDATES} candidates for {self.n_walls} walls and "
            f"{self.n_colors} colours on a {self.grid_size}x{self.grid_size} grid; this configuration "
            "is too constrained to sample: use fewer colours or walls, or a larger grid"
        )

    def to_layout(self, placement: np.ndarray) -> GridLayout:
        size = self.grid_size
        walls = sorted(int(c) for c in placement[: self.n_walls])
        colors = [int(c) for c in placement[self.n_walls : self.n_walls + self.n_colors]]
        agent = int(placement[self.n_walls + self.n_colors])
        return GridLayout(
            grid_size=size,
            walls=tuple(divmod(c, size) for c in walls),
            colors=tuple(divmod(c, size) for c in colors),
            agent=divmod(agent, size),
        )

    def validate_layout(self, layout: object) -> GridLayout:
        """Check a user-pinned layout (``reset(options={"layout": ...})``) and return it.

        Accepts a :class:`GridLayout` or a mapping with ``walls``, ``colors`` and ``agent`` given
        as (row, col) pairs. Raises ``ValueError`` naming the bad value.
        """
        if isinstance(layout, GridLayout):
            fields = {"walls": layout.walls, "colors": layout.colors, "agent": layout.agent}
            if layout.grid_size != self.grid_size:
                raise ValueError(f"layout grid_size {layout.grid_size} != env grid_size {self.grid_size}")
        elif isinstance(layout, dict):
            missing = {"walls", "colors", "agent"} - set(layout)
            if missing:
                raise ValueError(f"layout is missing {sorted(missing)}; got keys {sorted(layout)}")
            fields = layout
        else:
            raise TypeError(f"layout must be a GridLayout or a dict, got {layout!r}")

        def cell(value: object, what: str) -> tuple[int, int]:
            if (
                not isinstance(value, (tuple, list, np.ndarray))
                or len(value) != 2
                or not all(isinstance(v, Integral) and not isinstance(v, bool) for v in value)
            ):
                raise ValueError(f"{what} must be a (row, col) pair of ints, got {value!r}")
            row, col = int(value[0]), int(value[1])
            if not (0 <= row < self.grid_size and 0 <= col < self.grid_size):
                raise ValueError(f"{what} {value!r} is outside the {self.grid_size}x{self.grid_size} grid")
            return row, col

        walls = [cell(w, f"wall {i}") for i, w in enumerate(fields["walls"])]
        colors = [cell(c, f"colour {i}") for i, c in enumerate(fields["colors"])]
        agent = cell(fields["agent"], "agent")
        if len(walls) != self.n_walls:
            raise ValueError(f"layout has {len(walls)} walls, the env expects {self.n_walls}")
        if len(colors) != self.n_colors:
            raise ValueError(f"layout has {len(colors)} colours, the env expects {self.n_colors}")
        occupied = walls + colors + [agent]
        if len(set(occupied)) != len(occupied):
            raise ValueError(f"layout cells overlap: walls {walls}, colours {colors}, agent {agent}")
        size = self.grid_size
        placement = np.array([r * size + c for r, c in walls + colors + [agent]])
        if not self.candidate_ok(placement):
            raise ValueError(
                f"layout is not solvable: free cells must be connected and touch every colour "
                f"(walls {walls}, colours {colors})"
            )
        return GridLayout(size, tuple(sorted(walls)), tuple(colors), agent)


@lru_cache(maxsize=None)
def _has_solvable_layout(sampler: LayoutSampler) -> bool:
    """Whether one of :data:`SOLVABILITY_PROBE_CANDIDATES` candidates of ``sampler`` is solvable.

    Draws from a private fixed generator, never an env's, so probing changes no random stream
    and gives the same verdict every time; cached per (grid_size, n_colors, n_walls), which is
    what a sampler compares and hashes by.
    """
    rng = np.random.default_rng(0)
    return any(sampler.candidate_ok(sampler.draw_candidate(rng)) for _ in range(SOLVABILITY_PROBE_CANDIDATES))
