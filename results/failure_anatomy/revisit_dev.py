"""Diagnostic (not product code): is a late subgoal hard because it comes late, or because its
pair was already visited earlier in the episode? (session 15)

Pretraining tasks revisit a pair only as X-Y-X (4 of the 16 tasks); `HierGrid-v0`'s 5th subgoal
revisits A after B, C, D. On the 128 seen-transition 6-subgoal walks, this rolls out the study's
layer-LAYER ground-truth controllers (sampled actions, seed 10,000, as the study) and groups
P(subgoal k done | started) by how many subgoals ago subgoal k's pair was last the target
("new" if never in this episode).
usage: python revisit_dev.py LAYER OUT.json   (environment: RUN_DIR, EPISODES=2000, THREADS=1)
"""
import json, os, sys
from collections import defaultdict
from pathlib import Path
import numpy as np, torch
from agents.controllers import ground_truth_steering
from agents.rollouts import make_vector_env, episode_horizon
from hier_envs.tasks import grid_composition_task_sets
from study_backbone import load_study_backbone

layer, out = int(sys.argv[1]), sys.argv[2]
n_episodes, batch = int(os.environ.get("EPISODES", "2000")), 250
run_dir, model, ctrl = load_study_backbone(layer)
tasks_pool = grid_composition_task_sets()["seen transitions, 6 subgoals"]
gen = torch.Generator().manual_seed(10_000)
episodes = []  # (task pairs, colours visited at the end)
for b in range(n_episodes // batch):
    envs = make_vector_env("HierGrid-Pretrain-v0", batch, tasks=tasks_pool)
    steer = ground_truth_steering(ctrl)
    obs, infos = envs.reset(seed=10_000 + batch * b)
    tasks = [tuple(t) for t in infos["task"]]
    cache = model.init_inference_state(batch, episode_horizon(envs) + 1)
    active, final = np.ones(batch, bool), np.zeros(batch, int)
    with torch.no_grad():
        for t in range(episode_horizon(envs)):
            r = steer(model.step_lower(torch.from_numpy(obs), cache, layer), infos, t)
            a = model.select_action(model.step_upper(r, cache, layer), gen, False).numpy()
            obs, _, term, trunc, infos = envs.step(a)
            ended = active & (term | trunc)
            final[ended] = infos["colors_visited"][ended]
            active &= ~(term | trunc)
            if not active.any():
                break
    envs.close()
    episodes += [([c // 2 for c in task[::2]], int(v)) for task, v in zip(tasks, final)]
started, done = defaultdict(int), defaultdict(int)
for pairs, visited in episodes:
    for k in range(len(pairs)):
        if visited < 2 * k:
            break
        earlier = [j for j in range(k) if pairs[j] == pairs[k]]
        key = f"subgoal {k + 1}, " + (f"pair last visited {k - earlier[-1]} subgoals before" if earlier else "pair new in the episode")
        started[key] += 1
        done[key] += visited >= 2 * k + 2
rows = {key: {"started": started[key], "completed": done[key], "rate": round(done[key] / started[key], 3)}
        for key in sorted(started)}
result = {"run_dir": str(run_dir), "layer": layer, "pool": "seen transitions, 6 subgoals", "episodes": len(episodes),
          "success_rate": float(np.mean([v == 12 for _, v in episodes])), "completion_by_revisit": rows}
print(json.dumps(result, indent=1))
json.dump(result, open(out, "w"), indent=1)
