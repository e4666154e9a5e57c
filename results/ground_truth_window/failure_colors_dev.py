"""Diagnostic (not product code): which colour ends the failed episodes of the layer-3
ground-truth controllers (saved by window_dev.py), and at which subgoal?

Each wrong-colour failure is classed by the entered colour c against the expected colour e:
  partner        c is the other colour of e's pair (the right subgoal, wrong order inside it)
  seen_next      e starts a new subgoal and c starts a subgoal that follows the previous one in
                 some pretraining task (the pretraining prior over transitions)
  previous       c belongs to the subgoal just completed
  other          anything else
usage: python failure_colors_dev.py CONTROLLERS.pt LAYER OUT.json
environment: RUN_DIR (runs/grid_default): the study run dir whose backbone is loaded; CONTROLLERS.pt
"study" loads that run's own layer-LAYER controllers (session 14, `results/base_model_default_wd0.4`);
POOLS (all): "post,seen6" keeps only `HierGrid-v0` and the seen-transition 6-subgoal pool
"""
import json, os, sys
from collections import Counter
from pathlib import Path
import numpy as np, torch
from agents.pretrain import load_base_model
from agents.controllers import SubgoalControllers, ground_truth_steering, load_subgoal_controllers
from agents.models.controller import freeze
from agents.rollouts import make_vector_env, episode_horizon
from hier_envs.tasks import GRID_PRETRAIN_TASKS, grid_composition_task_sets, grid_subgoal_transitions

torch.set_num_threads(int(os.environ.get("THREADS", "1")))
ctrl_path, layer, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
run_dir = Path(os.environ.get("RUN_DIR", "runs/grid_default"))
model = freeze(load_base_model(run_dir / "base_model" / "model.pt")); model.eval()
if ctrl_path == "study":
    ctrl = load_subgoal_controllers(run_dir / "controllers" / f"layer_{layer}.pt", model.config.width,
                                    expect_layer=layer, expect_base_model=model)
else:
    ctrl = SubgoalControllers(model.config.width, 4, 16); ctrl.load_state_dict(torch.load(ctrl_path))
seen = grid_subgoal_transitions(GRID_PRETRAIN_TASKS)
pools = {"HierGrid-v0": ("HierGrid-v0", {})}
pools.update({k: ("HierGrid-Pretrain-v0", {"tasks": v}) for k, v in grid_composition_task_sets().items() if "post-training" not in k})
if os.environ.get("POOLS") == "post,seen6":
    pools = {k: v for k, v in pools.items() if k in ("HierGrid-v0", "seen transitions, 6 subgoals")}
result = {}
gen = torch.Generator().manual_seed(10_000)
for name, (env_id, kwargs) in pools.items():
    kinds, by_subgoal_index, fail_t = Counter(), Counter(), []
    n_done, outcomes = 0, Counter()
    for batch in range(4):
        envs = make_vector_env(env_id, 250, **kwargs)
        u = envs.unwrapped
        steer = ground_truth_steering(ctrl)
        obs, infos = envs.reset(seed=10_000 + 250 * batch)
        cache = model.init_inference_state(250, episode_horizon(envs) + 1)
        active = np.ones(250, bool)
        with torch.no_grad():
            for t in range(episode_horizon(envs)):
                expected = u._next_colors.copy(); tasks = infos["task"]; visited = infos["colors_visited"].copy()
                r = steer(model.step_lower(torch.from_numpy(obs), cache, layer), infos, t)
                a = model.select_action(model.step_upper(r, cache, layer), gen, False).numpy()
                obs, _, term, trunc, infos = envs.step(a)
                entered = u._cell_colors.ravel().take(u._agent_globals)
                for i in np.flatnonzero(active & (term | trunc)):
                    if infos["success"][i]:
                        outcomes["success"] += 1; continue
                    if trunc[i]:
                        outcomes["timeout"] += 1; by_subgoal_index[f"timeout@{visited[i] // 2}"] += 1; continue
                    e, c = int(expected[i]), int(entered[i])
                    k = int(visited[i])  # colours done before this one
                    if c // 2 == e // 2:
                        kind = "partner"
                    elif k % 2 == 0 and k > 0 and (tasks[i][k - 1] // 2, c // 2) in seen and c % 2 == 0:
                        kind = "seen_next"
                    elif k > 0 and c // 2 == tasks[i][k - 1] // 2:
                        kind = "previous"
                    else:
                        kind = "other"
                    kinds[kind] += 1; by_subgoal_index[f"{kind}@{k // 2}"] += 1; fail_t.append(t + 1)
                    outcomes["wrong_color"] += 1
                active &= ~(term | trunc)
                if not active.any():
                    break
        envs.close()
    result[name] = {"episodes": 1000, "outcomes": dict(outcomes), "wrong_color_kinds": dict(kinds),
                    "by_subgoal_index": dict(sorted(by_subgoal_index.items())),
                    "wrong_color_step_median": float(np.median(fail_t)) if fail_t else None}
    print(name, json.dumps(result[name]), flush=True)
json.dump(result, open(out, "w"), indent=1)
