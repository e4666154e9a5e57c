"""Development measurement (session 34): the grid expert's own action entropy on D*-like episodes.

The ε = 0 expert is uniform over the shortest-path-optimal actions (SPEC B3), so even a model that
knows the current subgoal cannot predict its action below ln(#optimal) nats per step. A
non-causal encoder that sees the whole segment can remove that entropy by naming the path, which is
what a code that carries the heading does. This script measures the floor on fresh episodes of the
pretraining tasks (`HierGrid-Pretrain-v0`) and of `HierGrid-v0` (300 each, reset seeds
10,000 + i).

usage: python expert_entropy_dev.py OUT.json
"""
import json
import sys

import gymnasium as gym
import numpy as np

import hier_envs  # noqa: F401
from hier_envs.atomic_io import write_json_atomic
from hier_envs.experts.grid_expert import GridExpert

out = {}
for env_id in ("HierGrid-Pretrain-v0", "HierGrid-v0"):
    env = gym.make(env_id)
    expert = GridExpert(0.0)
    rng = np.random.default_rng(0)
    per_step, n_opt = [], []
    successes = 0
    for ep in range(300):
        env.reset(seed=10_000 + ep)
        done = False
        while not done:
            probs = expert.action_probabilities(env)
            k = int((probs > 0).sum())
            h = float(np.log(k))
            per_step.append(h)
            n_opt.append(k)
            a = expert.act(env, rng)
            _, r, term, trunc, info = env.step(a)
            done = term or trunc
        successes += int(info.get("success", r > 0))
    out[env_id] = {
        "episodes": 300,
        "steps": len(per_step),
        "expert_success": successes / 300,
        "mean_entropy_nats_per_step": float(np.mean(per_step)),
        "share_of_steps_with_2_optimal_actions": float(np.mean(np.array(n_opt) >= 2)),
        "entropy_nats_per_episode": float(np.sum(per_step) / 300),
    }
write_json_atomic(sys.argv[1], out, indent=1)
print(json.dumps(out, indent=1))
