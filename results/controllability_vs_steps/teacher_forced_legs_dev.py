"""Diagnostic (not product code): the ground-truth controllers' per-step action mass, teacher-forced
along fresh expert episodes of the post-training task `HierGrid-v0` itself, per leg (session 21).

Rollout success multiplies twelve legs and mixes two things: what the steered model does at each
step, and where its own earlier mistakes left it. Teacher forcing on the expert's path removes the
second. Per leg c (the step after the c-th colour, towards colour c+1; 0-based), over every step
of the leg and every episode:

- ``p_optimal``: model mass on the expert's shortest-path actions toward the target colour;
- ``p_fatal``: mass on moves into any other colour (each ends the episode);
- ``p_prior`` (legs into a new pair after the first, c = 2, 4, …): mass on moves that are
  shortest-path toward the first colour of a pair that follows the current one in pretraining
  (A → C or D, …; every such transition in `HierGrid-v0` is unseen) but not toward the target:
  the pull of the pretraining transitions;
- ``survival``: mean over episodes of the product over the leg's steps of (1 − p_fatal), i.e. the
  chance that a model sampling its own actions along the expert's path would not end the episode
  on this leg (an upper bound on the rollout's leg rate, which also drifts off the path).

Both the controlled model (the controllers of CTRL, switched by the ground-truth subgoal as the
study does) and the unsteered model are scored. Layouts are read back from the first observation
(planes: 4 walls, 8 colours, agent).

usage: python teacher_forced_legs_dev.py MODEL.pt CTRL.pt LAYER OUT.json
       (environment: EPISODES=500, THREADS=1, DATA=<cache .npz of the expert episodes>)
"""
import json, os, sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from agents.controllers import load_subgoal_controllers
from agents.models.controller import freeze
from agents.pretrain import load_base_model
from hier_envs.datasets import generate_grid_dataset, load_dataset, save_dataset
from hier_envs.tasks import GRID_POSTTRAIN_TASK, GRID_PRETRAIN_TASKS, grid_subgoal_transitions

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "failure_anatomy"))
from study_backbone import teacher_forced_steps  # noqa: E402  (shared with teacher_forced_dev.py)

DATA_SEED = 777_002  # never used by D (1), D* (2), the eval (10,000) or the other dev data
torch.set_num_threads(int(os.environ.get("THREADS", "1")))
model_path, ctrl_path, layer, out = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
n_episodes = int(os.environ.get("EPISODES", "500"))
model = freeze(load_base_model(model_path))
model.eval()
ctrl = load_subgoal_controllers(ctrl_path, model.config.width, expect_layer=layer, expect_base_model=model)

cache = Path(os.environ.get("DATA", f"runs/post_expert_eps0_seed{DATA_SEED}_{n_episodes}.npz"))
if cache.exists():
    data = load_dataset(cache)
else:
    data = generate_grid_dataset(n_episodes, 0.0, DATA_SEED, env_kwargs={"tasks": [list(GRID_POSTTRAIN_TASK)]},
                                 progress=False)
    save_dataset(data, cache)
SEEN = grid_subgoal_transitions(GRID_PRETRAIN_TASKS)

per_step = {kind: defaultdict(lambda: defaultdict(list)) for kind in ("controlled", "unsteered")}
survival = {kind: defaultdict(list) for kind in ("controlled", "unsteered")}
alive = {kind: 1.0 for kind in per_step}
for step in teacher_forced_steps(model, ctrl, layer, data):
    leg = step.colors_visited
    after_a_pair = leg >= 2 and leg % 2 == 0  # heading for a new pair after a finished one
    if after_a_pair:
        previous = GRID_POSTTRAIN_TASK[leg - 1] // 2
        prior_targets = [2 * nxt for prev, nxt in SEEN if prev == previous]
        prior = sorted({a for tgt in prior_targets for a in step.plan.action_sets(step.cell, tgt)[0]} - set(step.optimal))
    for kind, p in step.probs.items():
        per_step[kind]["p_optimal"][leg].append(float(p[step.optimal].sum()))
        if after_a_pair:
            per_step[kind]["p_prior"][leg].append(float(p[prior].sum()))
        p_fatal = float(p[step.fatal].sum())
        per_step[kind]["p_fatal"][leg].append(p_fatal)
        alive[kind] *= 1.0 - p_fatal
    if step.reached:
        for kind in alive:
            survival[kind][leg].append(alive[kind])
            alive[kind] = 1.0

result = {"model": str(model_path), "controllers": str(ctrl_path), "layer": layer, "episodes": data.n_episodes,
          "task": list(GRID_POSTTRAIN_TASK), "dataset_seed": DATA_SEED}
for kind in per_step:
    result[kind] = {name: [round(float(np.mean(d[c])), 4) if d[c] else None for c in range(len(GRID_POSTTRAIN_TASK))]
                    for name, d in per_step[kind].items()}
    result[kind]["survival"] = [round(float(np.mean(survival[kind][c])), 4) for c in range(len(GRID_POSTTRAIN_TASK))]
    result[kind]["survival_product"] = round(float(np.prod(result[kind]["survival"])), 4)
out.write_text(json.dumps(result, indent=1))
for kind in per_step:
    print(kind, "survival by leg", result[kind]["survival"], "product", result[kind]["survival_product"])
