"""How a pinpad episode starts: what ``reset(options=...)`` may pin, and the draws of the rest.

Shared by the grid env, the ant env and (for the options) the batched grid env, so that the
three accept the same options with the same errors and draw in the same order (SPEC B2.1).
``options={"task": [...], "layout": GridLayout | dict}`` pins the task and/or the layout for one
episode, like OGBench's fixed evaluation tasks; both are validated before anything changes, so a
bad one raises and the env stays usable. Whatever is not pinned is drawn from the env's
``np_random``: first the layout (:meth:`LayoutSampler.sample`), then the task
(:func:`~hier_envs.tasks.draw_task_index`, no draw when the env has one task). The batched env
draws per sub-env in this same order, which is what lets a batched run and N single envs agree
step for step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hier_envs.grid_layout import GridLayout, LayoutSampler
from hier_envs.tasks import draw_task_index, validate_task

__all__ = ["RESET_OPTION_KEYS", "draw_layout_and_task", "parse_reset_options"]

RESET_OPTION_KEYS: tuple[str, ...] = ("task", "layout")
"""The ``reset`` options every pinpad env accepts."""


def parse_reset_options(
    options: dict[str, Any] | None,
    n_colors: int,
    layout_sampler: LayoutSampler,
    extra_keys: Sequence[str] = (),
) -> tuple[tuple[int, ...] | None, GridLayout | None]:
    """The pinned ``(task, layout)`` of ``options``, each ``None`` when not given.

    ``extra_keys`` are further option names the caller reads itself (the batched env's
    ``reset_mask``); any other key raises ``ValueError`` naming it, a non-dict ``TypeError``.
    """
    if options is None:
        return None, None
    if not isinstance(options, dict):
        raise TypeError(f"options must be a dict, got {options!r}")
    allowed = (*RESET_OPTION_KEYS, *extra_keys)
    unknown = set(options) - set(allowed)
    if unknown:
        expected = ", ".join(repr(key) for key in allowed[:-1]) + f" and/or {allowed[-1]!r}"
        raise ValueError(f"unknown reset options {sorted(unknown)}; expected {expected}")
    task = validate_task(options["task"], n_colors) if options.get("task") is not None else None
    layout = layout_sampler.validate_layout(options["layout"]) if options.get("layout") is not None else None
    return task, layout


def draw_layout_and_task(
    layout_sampler: LayoutSampler,
    tasks: Sequence[tuple[int, ...]],
    rng: np.random.Generator,
    pinned_task: tuple[int, ...] | None = None,
    pinned_layout: GridLayout | None = None,
) -> tuple[GridLayout, tuple[int, ...]]:
    """A new episode's layout and task: the pinned ones, else drawn from ``rng``, layout first."""
    layout = layout_sampler.to_layout(layout_sampler.sample(rng)) if pinned_layout is None else pinned_layout
    task = tasks[draw_task_index(len(tasks), rng)] if pinned_task is None else pinned_task
    return layout, task
