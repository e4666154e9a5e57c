"""Pinpad tasks: the paper's task tables, subgoal definitions, validation and progress rules.

This module is data plus small pure functions, so the pinpad rules exist once and are
shared by the grid env, the batched grid env and the ant env (SPEC A§2, B2.1).

A *task* is a sequence of colour ids to visit in order. A colour counts as visited when
the agent enters its cell from another cell; entering any colour other than the next one
ends the episode as a failure (SPEC A§2.1 "Episode end").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral

import numpy as np


def _parse(rows: str) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(int(c) for c in row.split("-")) for row in rows.split())


GRID_PRETRAIN_TASKS: tuple[tuple[int, ...], ...] = _parse(
    """
    0-1-4-5-0-1  0-1-4-5-2-3  0-1-6-7-2-3  2-3-0-1-4-5
    2-3-6-7-2-3  2-3-6-7-4-5  4-5-0-1-4-5  4-5-0-1-6-7
    4-5-2-3-6-7  6-7-2-3-0-1  6-7-2-3-6-7  6-7-4-5-0-1
    0-1-6-7-4-5  2-3-0-1-6-7  4-5-2-3-0-1  6-7-4-5-2-3
    """
)
"""The 16 gridworld pretraining tasks, verbatim from Table A1 (SPEC A§2.1)."""

GRID_POSTTRAIN_TASK: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3)
"""The gridworld post-training (RL) task A-B-C-D-A-B (SPEC A§2.1)."""

GRID_SUBGOAL_NAMES: tuple[str, ...] = ("A", "B", "C", "D")
"""Grid abstract actions: subgoal k is the colour pair (2k, 2k+1) (SPEC A§2.1)."""

ANT_PRETRAIN_TASKS: tuple[tuple[int, ...], ...] = _parse(
    """
    0-3-2  1-0-3  2-1-0  3-2-1  0-2-0  0-2-1  0-3-1  1-0-2
    1-3-1  1-3-2  2-0-2  2-0-3  2-1-3  3-1-0  3-1-3  3-2-0
    """
)
"""The 16 ant pretraining tasks, verbatim from Table A2 (SPEC A§2.2)."""

ANT_POSTTRAIN_TASK: tuple[int, ...] = (0, 1, 2, 3)
"""The ant post-training task (SPEC A§2.2)."""


def grid_subgoal(color: int) -> int:
    """Ground-truth grid abstract action pursued while heading for ``color`` (pairs 0-1, 2-3, ...)."""
    return color // 2


def grid_subgoal_sequence(task: Sequence[int]) -> tuple[int, ...]:
    """Abstract actions of a grid task: ``(0, 1, 4, 5, 0, 1)`` → ``(0, 2, 0)`` (A-C-A).

    Raises ``ValueError`` unless the task is a whole number of subgoal pairs ``(2k, 2k+1)``.
    """
    colors = tuple(int(c) for c in task)
    if len(colors) % 2 or any(first % 2 or second != first + 1 for first, second in zip(colors[::2], colors[1::2])):
        raise ValueError(f"task {colors!r} is not a sequence of grid subgoal pairs (2k, 2k+1)")
    return tuple(grid_subgoal(c) for c in colors[::2])


def grid_subgoal_transitions(tasks: Sequence[Sequence[int]]) -> frozenset[tuple[int, int]]:
    """Every (subgoal, next subgoal) pair that occurs in ``tasks``."""
    pairs: set[tuple[int, int]] = set()
    for task in tasks:
        subgoals = grid_subgoal_sequence(task)
        pairs.update(zip(subgoals, subgoals[1:]))
    return frozenset(pairs)


def grid_subgoal_walk_tasks(n_subgoals: int, transitions: frozenset[tuple[int, int]] | set[tuple[int, int]]) -> tuple[tuple[int, ...], ...]:
    """Every grid task of ``n_subgoals`` subgoals whose consecutive subgoals are all in ``transitions``.

    Used to split a composition into its two kinds of novelty (SPEC A§2.1 INFERRED): tasks made of
    *unseen* transitions at the pretraining length, and tasks as long as the post-training task
    made only of transitions seen in pretraining. Sorted, so the pool (and an env drawing from
    it) does not depend on set order.
    """
    if isinstance(n_subgoals, bool) or not isinstance(n_subgoals, Integral) or n_subgoals < 1:
        raise ValueError(f"n_subgoals must be an int >= 1, got {n_subgoals!r}")
    walks: list[tuple[int, ...]] = [(g,) for g in range(len(GRID_SUBGOAL_NAMES))]
    for _ in range(n_subgoals - 1):
        walks = [walk + (nxt,) for walk in walks for (prev, nxt) in sorted(transitions) if prev == walk[-1]]
    if not walks:
        raise ValueError(f"no task of {n_subgoals} subgoals uses only the transitions {sorted(transitions)}")
    return tuple(sorted(tuple(c for g in walk for c in (2 * g, 2 * g + 1)) for walk in walks))


def grid_composition_task_sets() -> dict[str, tuple[tuple[int, ...], ...]]:
    """The grid's 2 × 2 composition table (rows: transitions seen / unseen in pretraining; columns:
    3 subgoals as in pretraining / 6 as in the post-training task). The unseen-6 cell is the
    post-training task itself, the seen-3 cell the pretraining tasks (SPEC A§2.1)."""
    seen = grid_subgoal_transitions(GRID_PRETRAIN_TASKS)
    distinct = {(a, b) for a in range(len(GRID_SUBGOAL_NAMES)) for b in range(len(GRID_SUBGOAL_NAMES)) if a != b}
    unseen = frozenset(distinct - seen)
    return {
        "seen transitions, 3 subgoals (pretraining tasks)": GRID_PRETRAIN_TASKS,
        "unseen transitions, 3 subgoals": grid_subgoal_walk_tasks(3, unseen),
        "seen transitions, 6 subgoals": grid_subgoal_walk_tasks(6, seen),
        "unseen transitions, 6 subgoals (post-training task)": (GRID_POSTTRAIN_TASK,),
    }


def validate_task(task: object, n_colors: int) -> tuple[int, ...]:
    """Return ``task`` as a tuple of ints, or raise naming the bad value (SPEC B2.1).

    A valid task is a non-empty sequence of integer colour ids in ``[0, n_colors)`` with no
    colour twice in a row (a colour counts only when entered from another cell, so a repeat
    could never be completed).
    """
    if isinstance(task, np.ndarray) and task.ndim == 1:
        task = task.tolist()
    if isinstance(task, (str, bytes)) or not isinstance(task, Sequence):
        raise TypeError(f"task must be a sequence of colour ids, got {task!r}")
    if len(task) == 0:
        raise ValueError(f"task must name at least one colour, got an empty task {task!r}")
    colors: list[int] = []
    for position, color in enumerate(task):
        if isinstance(color, bool) or not isinstance(color, Integral):
            raise ValueError(f"task entry {position} is {color!r}, not an integer colour id (task {task!r})")
        color = int(color)
        if not 0 <= color < n_colors:
            raise ValueError(
                f"task entry {position} is colour {color}, which does not exist: colours are 0..{n_colors - 1} "
                f"(task {tuple(task)!r})"
            )
        if colors and colors[-1] == color:
            raise ValueError(
                f"task {tuple(task)!r} names colour {color} twice in a row at entry {position}; "
                "a colour counts only when entered from another cell"
            )
        colors.append(color)
    return tuple(colors)


def validate_tasks(tasks: object, n_colors: int) -> tuple[tuple[int, ...], ...]:
    """Validate a non-empty collection of tasks (the ``tasks=`` keyword)."""
    if isinstance(tasks, (str, bytes)) or not isinstance(tasks, Sequence) or len(tasks) == 0:
        raise ValueError(f"tasks must be a non-empty sequence of tasks, got {tasks!r}")
    return tuple(validate_task(t, n_colors) for t in tasks)


def resolve_tasks(
    task: Sequence[int] | None,
    tasks: Sequence[Sequence[int]] | None,
    n_colors: int,
    default_task: Sequence[int],
    default_tasks: Sequence[Sequence[int]] | None = None,
) -> tuple[tuple[int, ...], ...]:
    """The tasks an env draws from on reset: ``task`` pins one, ``tasks`` gives a uniform pool,
    neither gives ``default_tasks`` or, when that is ``None`` too, ``default_task`` (the env's
    post-training task).

    ``default_tasks`` is what a registered id sets (SPEC B2 "task on reset"), kept apart from
    ``task``/``tasks`` so that a user's ``gym.make(id, task=...)`` or ``tasks=...`` replaces the
    id's choice instead of clashing with it; only ``task`` and ``tasks`` together are refused.
    It is validated only when it is used, so replacing it also lifts its colour range.
    """
    if task is not None and tasks is not None:
        raise ValueError("pass either task= or tasks=, not both")
    if tasks is not None:
        return validate_tasks(tasks, n_colors)
    if task is None and default_tasks is not None:
        return validate_tasks(default_tasks, n_colors)
    return (validate_task(default_task if task is None else task, n_colors),)


def draw_task_index(n_tasks: int, rng: np.random.Generator) -> int:
    """Index of a new episode's task in a pool of ``n_tasks``, drawn uniformly from ``rng``.

    A single task is taken without touching ``rng``, so pinning one task leaves the random
    stream (layouts, ant start states) exactly as it is. The single envs and the batched grid
    env all draw through here, which keeps their streams identical (SPEC B2.1).
    """
    return 0 if n_tasks == 1 else int(rng.integers(n_tasks))


@dataclass
class TaskProgress:
    """Progress along one task: the single place where visit rules are decided (SPEC A§2.1).

    ``colors_visited`` counts correctly visited colours; the episode succeeds when it reaches
    ``len(task)`` and fails on entering any other colour.
    """

    task: tuple[int, ...]
    colors_visited: int = 0
    failed: bool = False

    @property
    def success(self) -> bool:
        return self.colors_visited == len(self.task)

    @property
    def done(self) -> bool:
        return self.failed or self.success

    @property
    def next_color(self) -> int | None:
        return None if self.done else self.task[self.colors_visited]

    def enter(self, color: int) -> bool:
        """Record entering ``color`` from another cell; returns True if it was the right one."""
        if self.done:
            raise RuntimeError("enter() called on a finished task")
        if color == self.task[self.colors_visited]:
            self.colors_visited += 1
            return True
        self.failed = True
        return False
