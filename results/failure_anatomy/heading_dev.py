"""Diagnostic (not product code): are the ground-truth-steered failures navigation slips or
wrong headings? (session 15)

Rolls out a study's layer-LAYER ground-truth controllers (as `evaluate_subgoal_controllers`,
sampled actions, seed 10,000) and, at every step, scores the model's action distribution against
the exact expert plan of the layout (`LayoutPlan`, SPEC A§2.3):
  p_optimal  mass on the expert's shortest-path actions toward the current target colour e
  p_fatal    mass on actions that enter a colour other than e (they end the episode)
Each wrong-colour ending (entered colour c) is classed by the H = 3 moves before the fatal one:
  slip       at least 2 of them were shortest-path moves toward e (the agent was on its way to
             the right colour and stepped into another one next to its path)
  heading    at least 2 were shortest-path moves toward c and fewer than 2 toward e (the agent
             was going to the wrong colour)
  unclear    anything else (also episodes that fail within 3 steps of a subgoal's start
             are classed only on the moves they have)
usage: python heading_dev.py LAYER OUT.json   (environment: RUN_DIR, EPISODES=500, THREADS=1)
"""
import json, os, sys
from collections import Counter, defaultdict
from pathlib import Path
import numpy as np, torch
from agents.controllers import ground_truth_steering
from agents.rollouts import make_vector_env, episode_horizon
from hier_envs.experts.grid_expert import LayoutPlan
from hier_envs.tasks import grid_composition_task_sets
from study_backbone import load_study_backbone

layer, out = int(sys.argv[1]), sys.argv[2]
n_episodes, batch = int(os.environ.get("EPISODES", "500")), 250
run_dir, model, ctrl = load_study_backbone(layer)
sets = grid_composition_task_sets()
pools = {"seen transitions, 3 subgoals": ("HierGrid-Pretrain-v0", {"tasks": sets["seen transitions, 3 subgoals (pretraining tasks)"]}),
         "HierGrid-v0": ("HierGrid-v0", {})}


def optimal(plan, cell, target):
    try:
        return set(plan.action_sets(cell, target)[0])
    except ValueError:
        return set()


result = {}
gen = torch.Generator().manual_seed(10_000)
for name, (env_id, kwargs) in pools.items():
    kinds, outcomes, by_k = Counter(), Counter(), Counter()
    p_opt, p_fatal = defaultdict(list), defaultdict(list)  # by subgoal index
    p_fatal_at_failure, p_opt_at_failure = [], []
    for b in range(n_episodes // batch):
        envs = make_vector_env(env_id, batch, **kwargs)
        u = envs.unwrapped
        steer = ground_truth_steering(ctrl)
        obs, infos = envs.reset(seed=10_000 + batch * b)
        plans = [LayoutPlan(layout) for layout in u.layouts()]
        history = [[] for _ in range(batch)]  # (cell, action) since the current subgoal started
        cache = model.init_inference_state(batch, episode_horizon(envs) + 1)
        active = np.ones(batch, bool)
        with torch.no_grad():
            for t in range(episode_horizon(envs)):
                expected = u._next_colors.copy(); visited = infos["colors_visited"].copy(); cells = u.agent_cells.copy()
                out_t = model.step_upper(steer(model.step_lower(torch.from_numpy(obs), cache, layer), infos, t), cache, layer)
                probs = torch.softmax(out_t.action_logits, -1).numpy()
                a = model.select_action(out_t, gen, False).numpy()
                fatal_now = {}
                for i in np.flatnonzero(active):
                    plan, e, c0 = plans[i], int(expected[i]), int(cells[i])
                    opt, safe = plan.action_sets(c0, e)
                    fatal = [act for act in range(4) if act not in safe]
                    k = int(visited[i]) // 2
                    p_opt[k].append(float(probs[i, opt].sum())); p_fatal[k].append(float(probs[i, fatal].sum()))
                    fatal_now[i] = (probs[i, int(a[i])], float(probs[i, opt].sum()))
                obs, _, term, trunc, infos = envs.step(a)
                entered = u._cell_colors.ravel().take(u._agent_globals)
                for i in np.flatnonzero(active):
                    if not (term[i] or trunc[i]):
                        if infos["colors_visited"][i] != visited[i] and visited[i] % 2 == 1:
                            history[i] = []  # a new subgoal starts
                        else:
                            history[i].append((int(cells[i]), int(a[i])))
                        continue
                    if infos["success"][i]:
                        outcomes["success"] += 1; continue
                    if trunc[i]:
                        outcomes["timeout"] += 1; by_k[f"timeout@{int(visited[i]) // 2}"] += 1; continue
                    outcomes["wrong_color"] += 1
                    e, c = int(expected[i]), int(entered[i])
                    last = history[i][-3:]
                    to_e = sum(act in optimal(plans[i], cell, e) for cell, act in last)
                    to_c = sum(act in optimal(plans[i], cell, c) for cell, act in last)
                    kind = "slip" if to_e >= 2 else ("heading" if to_c >= 2 else "unclear")
                    kinds[kind] += 1; by_k[f"{kind}@{int(visited[i]) // 2}"] += 1
                    p_fatal_at_failure.append(float(fatal_now[i][0])); p_opt_at_failure.append(fatal_now[i][1])
                active &= ~(term | trunc)
                if not active.any():
                    break
        envs.close()
    result[name] = {
        "episodes": n_episodes, "outcomes": dict(outcomes), "wrong_color_kinds": dict(kinds),
        "by_subgoal_index": dict(sorted(by_k.items())),
        "mean_p_optimal_by_subgoal": {k: float(np.mean(v)) for k, v in sorted(p_opt.items())},
        "mean_p_fatal_by_subgoal": {k: float(np.mean(v)) for k, v in sorted(p_fatal.items())},
        "steps_by_subgoal": {k: len(v) for k, v in sorted(p_opt.items())},
        "median_p_of_fatal_action_taken": float(np.median(p_fatal_at_failure)) if p_fatal_at_failure else None,
        "median_p_optimal_at_fatal_step": float(np.median(p_opt_at_failure)) if p_opt_at_failure else None,
    }
    print(name, json.dumps(result[name]), flush=True)
json.dump({"run_dir": str(run_dir), "layer": layer, "pools": result}, open(out, "w"), indent=1)
