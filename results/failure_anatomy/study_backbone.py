"""Shared by the teacher-forcing dev scripts (this folder's and
``../controllability_vs_steps/teacher_forced_legs_dev.py``): the study run dir's frozen backbone
and its layer-``layer`` ground-truth controllers (environment: RUN_DIR, default
runs/grid_default; THREADS, default 1), and a walk over stored expert episodes that gives, per
step, the controlled and unsteered action probabilities and the expert's action sets."""
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from agents.controllers import load_subgoal_controllers
from agents.models.controller import freeze
from agents.pretrain import batch_tensors, load_base_model
from hier_envs.experts.grid_expert import LayoutPlan
from hier_envs.grid_layout import LayoutSampler

PLANES = LayoutSampler(7, 8, 4)  # only its to_layout: planes are walls, colours, agent


def load_study_backbone(layer: int):
    """``(run_dir, model, controllers)``; the controllers are checked against the backbone."""
    torch.set_num_threads(int(os.environ.get("THREADS", "1")))
    run_dir = Path(os.environ.get("RUN_DIR", "runs/grid_default"))
    model = freeze(load_base_model(run_dir / "base_model" / "model.pt"))
    model.eval()
    controllers = load_subgoal_controllers(run_dir / "controllers" / f"layer_{layer}.pt", model.config.width,
                                           expect_layer=layer, expect_base_model=model)
    return run_dir, model, controllers


@torch.no_grad()
def _teacher_forced_probs(model, controllers, layer: int, data, indices: np.ndarray) -> dict[str, np.ndarray]:
    """``{"controlled", "unsteered"}`` → ``(B, T, 4)`` action probabilities on the episodes
    ``indices`` of ``data``; the controlled model switches controllers by the ground-truth subgoal."""
    batch = batch_tensors(data, indices)
    lower = model.forward_lower(batch["observations"], layer)
    controlled = model.forward_upper(controllers(lower, batch["subgoals"].clamp(min=0)), layer)
    return {"controlled": torch.softmax(controlled.action_logits, -1).numpy(),
            "unsteered": torch.softmax(model.forward_upper(lower, layer).action_logits, -1).numpy()}


def _episode_plan(episode: dict) -> tuple[LayoutPlan, np.ndarray, list[int]]:
    """``(plan, agent cell per step, task colours)`` of a stored grid episode: the layout is read
    back from the first observation (one cell per wall / colour plane)."""
    planes = episode["observations"][:, : 13 * 49].reshape(-1, 13, 49)
    layout = PLANES.to_layout(planes[0].argmax(-1))
    return LayoutPlan(layout), planes[:, 12].argmax(-1), [c for c in episode["task"] if c >= 0]


class TeacherForcedStep(NamedTuple):
    """One step of a stored expert episode, scored by :func:`teacher_forced_steps`."""

    colors_visited: int
    probs: dict[str, np.ndarray]
    """"controlled" and "unsteered" → the step's ``(4,)`` action probabilities."""
    optimal: list[int]
    """Shortest-path actions toward the target colour."""
    fatal: list[int]
    """Moves into another colour (each ends the episode)."""
    reached: bool
    """The expert's move visits the target colour."""
    plan: LayoutPlan
    cell: int
    """The agent's cell before the move."""


def teacher_forced_steps(model, controllers, layer: int, data, batch_episodes: int = 100):
    """Yield a :class:`TeacherForcedStep` for every step of every episode of ``data``
    (successful ε = 0 expert episodes), in order."""
    for start in range(0, data.n_episodes, batch_episodes):
        idx = np.arange(start, min(start + batch_episodes, data.n_episodes))
        probs = _teacher_forced_probs(model, controllers, layer, data, idx)
        for row, i in enumerate(idx):
            episode = data.episode(int(i))
            (plan, cells, task), visited = _episode_plan(episode), 0
            for t in range(len(episode["actions"])):
                target, cell = task[visited], int(cells[t])
                optimal, safe = plan.action_sets(cell, target)
                assert int(episode["actions"][t]) in optimal, "the expert's own action must be optimal"
                reached = plan.cell_color[int(cells[t + 1])] == target
                yield TeacherForcedStep(visited, {kind: p[row, t] for kind, p in probs.items()}, optimal,
                                        [a for a in range(4) if a not in safe], reached, plan, cell)
                visited += reached
            assert visited == len(task), "every episode of the data is successful"
