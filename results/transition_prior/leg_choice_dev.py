"""Diagnostic (not product code): which pair does the grid base model head for when a new subgoal
starts, steered by ground-truth controllers or unsteered? (session 30, issue #3)

Hypothesis tested. A controller for subgoal Y fitted on D* only ever meets Y after the subgoals
X' that precede Y in the pretraining tasks (SPEC A§2.1, Table A1). There the base model's own
prior over the next pair is succ(X'), so the fit only has to out-vote succ(X') \\ {Y}. On a novel
transition X -> Y the prior is succ(X); a pair in succ(X) that never appeared in succ(X') for any
X' is one the controller never had to out-vote ("unopposed"). If the controllers are context-bound
tie-breakers rather than subgoal setters, wrong choices after X should go mostly to the
unopposed pair.

For every leg that starts a new pair (colours visited even and > 0) the first colour the agent
enters decides the leg: the expected colour (the task goes on) or a wrong one (the episode ends).
Counts are kept per (previous subgoal, target subgoal) and entered pair; time-outs inside the leg
are counted as "timeout".

usage: python leg_choice_dev.py RUN_DIR CONTROLLERS LAYER OUT.json
  CONTROLLERS: a controllers checkpoint (``load_subgoal_controllers``) or ``none`` (unsteered;
  LAYER is then ignored). 1,000 episodes per pool, seed 10,000, sampled actions, as the study's
  composition table; THREADS (1) torch threads.
"""
import json
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import torch

from agents.controllers import ground_truth_steering, load_subgoal_controllers
from agents.models.controller import freeze
from agents.pretrain import load_base_model
from agents.rollouts import episode_endings, episode_horizon, make_vector_env
from hier_envs.tasks import GRID_PRETRAIN_TASKS, GRID_SUBGOAL_NAMES, grid_composition_task_sets, grid_subgoal_transitions

torch.set_num_threads(int(os.environ.get("THREADS", "1")))
run_dir, ctrl_arg, layer, out = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
model = freeze(load_base_model(run_dir / "base_model" / "model.pt"))
model.eval()
controllers = None
if ctrl_arg != "none":
    controllers = load_subgoal_controllers(ctrl_arg, model.config.width, expect_layer=layer, expect_base_model=model)
    form = controllers.form
else:
    form, layer = "unsteered", 0

seen = grid_subgoal_transitions(GRID_PRETRAIN_TASKS)
n_sub = len(GRID_SUBGOAL_NAMES)
succ = {x: {y for (a, y) in seen if a == x} for x in range(n_sub)}
pred = {y: {x for (x, b) in seen if b == y} for y in range(n_sub)}


def unopposed(x: int, y: int) -> list[int]:
    """Pairs the pretraining prior offers after x that the y-controller never had to out-vote."""
    met = set().union(*(succ[xp] for xp in pred[y])) - {y}
    return sorted(succ[x] - met - {y})


pools = {k: v for k, v in grid_composition_task_sets().items() if not k.startswith("seen transitions, 6")}
result = {"run_dir": str(run_dir), "controllers": ctrl_arg, "form": form, "layer": layer, "pools": {}}
start = time.time()
for name, tasks in pools.items():
    gen = torch.Generator().manual_seed(10_000)  # per pool, as evaluate_policy
    legs: dict[str, Counter] = defaultdict(Counter)
    outcomes = Counter()
    n_batch, per = 4, 250
    for batch in range(n_batch):
        envs = make_vector_env("HierGrid-Pretrain-v0", per, tasks=tasks)
        u = envs.unwrapped
        steer = ground_truth_steering(controllers) if controllers is not None else None
        obs, infos = envs.reset(seed=10_000 + per * batch)
        horizon = episode_horizon(envs)
        cache = model.init_inference_state(per, horizon + 1)
        active = np.ones(per, bool)
        with torch.no_grad():
            for t in range(horizon):
                visited_before = u.colors_visited
                task_now = u.episode_tasks
                residual = model.step_lower(torch.from_numpy(obs), cache, layer)
                if steer is not None:
                    residual = steer(residual, infos, t)
                action = model.select_action(model.step_upper(residual, cache, layer), gen, False).numpy()
                obs, _, term, trunc, infos = envs.step(action)
                colours = u.cell_colors
                entered = colours[np.arange(per), u.agent_cells]
                visited_after = u.colors_visited
                endings = episode_endings(infos["success"], infos["failure"], trunc)
                for i in np.flatnonzero(active):
                    k = int(visited_before[i])
                    done = bool(term[i] or trunc[i])
                    if done:
                        outcomes[str(endings[i])] += 1
                    if k == 0 or k % 2 or k >= len(task_now[i]):
                        continue
                    x, y = task_now[i][k - 1] // 2, task_now[i][k] // 2
                    key = f"{GRID_SUBGOAL_NAMES[x]}->{GRID_SUBGOAL_NAMES[y]}"
                    if visited_after[i] > k or (done and infos["success"][i]):
                        legs[key][GRID_SUBGOAL_NAMES[y]] += 1
                    elif term[i] and not infos["success"][i]:
                        c = int(entered[i])
                        label = GRID_SUBGOAL_NAMES[c // 2] + ("" if c % 2 == 0 else "(2nd colour)")
                        legs[key][label] += 1
                    elif trunc[i]:
                        legs[key]["timeout"] += 1
                active &= ~(term | trunc)
                if not active.any():
                    break
        envs.close()
    table = {}
    for key, counts in sorted(legs.items()):
        x, y = (GRID_SUBGOAL_NAMES.index(s) for s in key.split("->"))
        table[key] = {"counts": dict(counts.most_common()), "legs": sum(counts.values()),
                      "seen_in_pretraining": (x, y) in seen,
                      "prior_after_previous": [GRID_SUBGOAL_NAMES[s] for s in sorted(succ[x])],
                      "unopposed": [GRID_SUBGOAL_NAMES[s] for s in unopposed(x, y)]}
    result["pools"][name] = {"episodes": n_batch * per, "outcomes": dict(outcomes), "legs": table}
    print(name, json.dumps(result["pools"][name]["outcomes"]), flush=True)
    for key, row in table.items():
        print(f"  {key}: {row['counts']} unopposed={row['unopposed']}", flush=True)
result["wall_s"] = round(time.time() - start, 1)
result["threads"] = torch.get_num_threads()
Path(out).parent.mkdir(parents=True, exist_ok=True)
tmp = Path(out).with_suffix(".tmp")
tmp.write_text(json.dumps(result, indent=1))
tmp.replace(out)
