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
from agents.pretrain import batch_tensors, load_base_model
from hier_envs.datasets import generate_grid_dataset, load_dataset, save_dataset
from hier_envs.experts.grid_expert import LayoutPlan
from hier_envs.grid_layout import LayoutSampler
from hier_envs.tasks import GRID_POSTTRAIN_TASK, GRID_PRETRAIN_TASKS, grid_subgoal_transitions

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
PLANES = LayoutSampler(7, 8, 4)  # only its to_layout: planes are walls, colours, agent
SEEN = grid_subgoal_transitions(GRID_PRETRAIN_TASKS)

per_step = {kind: defaultdict(lambda: defaultdict(list)) for kind in ("controlled", "unsteered")}
survival = {kind: defaultdict(list) for kind in ("controlled", "unsteered")}
for start in range(0, data.n_episodes, 100):
    idx = np.arange(start, min(start + 100, data.n_episodes))
    b = batch_tensors(data, idx)
    with torch.no_grad():
        lower = model.forward_lower(b["observations"], layer)
        probs = {"controlled": torch.softmax(model.forward_upper(ctrl(lower, b["subgoals"].clamp(min=0)), layer).action_logits, -1).numpy(),
                 "unsteered": torch.softmax(model.forward_upper(lower, layer).action_logits, -1).numpy()}
    for row, i in enumerate(idx):
        ep = data.episode(int(i))
        planes = ep["observations"][:, : 13 * 49].reshape(-1, 13, 49)
        cells = planes[:, 12].argmax(-1)
        layout = PLANES.to_layout(planes[0].argmax(-1))
        plan, task, visited = LayoutPlan(layout), [c for c in ep["task"] if c >= 0], 0
        alive = {kind: 1.0 for kind in probs}
        for t in range(len(ep["actions"])):
            target, cell = task[visited], int(cells[t])
            opt, safe = plan.action_sets(cell, target)
            fatal = [a for a in range(4) if a not in safe]
            assert int(ep["actions"][t]) in opt, "the expert's own action must be optimal"
            prior = []
            if visited >= 2 and visited % 2 == 0:  # heading for a new pair after a finished one
                previous = task[visited - 1] // 2
                prior_targets = [2 * nxt for prev, nxt in SEEN if prev == previous]
                prior = sorted({a for tgt in prior_targets for a in plan.action_sets(cell, tgt)[0]} - set(opt))
            for kind, p in probs.items():
                per_step[kind]["p_optimal"][visited].append(float(p[row, t, opt].sum()))
                if visited >= 2 and visited % 2 == 0:
                    per_step[kind]["p_prior"][visited].append(float(p[row, t, prior].sum()))
                p_fatal = float(p[row, t, fatal].sum())
                per_step[kind]["p_fatal"][visited].append(p_fatal)
                alive[kind] *= 1.0 - p_fatal
            if plan.cell_color[int(cells[t + 1])] == target:
                for kind in probs:
                    survival[kind][visited].append(alive[kind])
                    alive[kind] = 1.0
                visited += 1
        assert visited == len(task), "an expert episode of the dataset is successful"

result = {"model": str(model_path), "controllers": str(ctrl_path), "layer": layer, "episodes": data.n_episodes,
          "task": list(GRID_POSTTRAIN_TASK), "dataset_seed": DATA_SEED}
for kind in probs:
    result[kind] = {name: [round(float(np.mean(d[c])), 4) if d[c] else None for c in range(len(GRID_POSTTRAIN_TASK))]
                    for name, d in per_step[kind].items()}
    result[kind]["survival"] = [round(float(np.mean(survival[kind][c])), 4) for c in range(len(GRID_POSTTRAIN_TASK))]
    result[kind]["survival_product"] = round(float(np.prod(result[kind]["survival"])), 4)
out.write_text(json.dumps(result, indent=1))
for kind in probs:
    print(kind, "survival by leg", result[kind]["survival"], "product", result[kind]["survival_product"])
