"""Dev: the λ = 10/41 ant model with *sampled* actions instead of the study's greedy means, unsteered
and under its layer-4 ground-truth controllers, 200 episodes each on HierAnt-v0 and
HierAnt-Pretrain-v0 (the study's evaluation seed 10,000). Does committing to one sampled torque
pattern, instead of averaging patterns at ambiguous steps, change where the ant goes?

usage: python results/ant_obs_loss_scale/sampled_actions_dev.py RUN_DIR OUT.json
"""
import json
import sys
from pathlib import Path

import torch

from agents.controllers import evaluate_subgoal_controllers, load_subgoal_controllers
from agents.models.controller import freeze
from agents.pretrain import load_base_model
from agents.rollouts import evaluate_policy
from hier_envs.atomic_io import write_json_atomic

torch.set_num_threads(1)
run_dir = Path(sys.argv[1])
model = freeze(load_base_model(run_dir / "base_model" / "model.pt"))
controllers = freeze(load_subgoal_controllers(run_dir / "controllers" / "layer_4.pt", model.config.width))
rows = {}
for env_id in ("HierAnt-v0", "HierAnt-Pretrain-v0"):
    for name, greedy in (("sampled", False), ("greedy", True)):
        unsteered = evaluate_policy(model, env_id, 200, 10_000, batch_envs=100, greedy=greedy)
        steered = evaluate_subgoal_controllers(model, controllers, 4, env_id=env_id, n_episodes=200, seed=10_000,
                                               greedy=greedy, batch_envs=100)
        for label, stats in (("unsteered", unsteered), ("controllers_layer4", steered)):
            rows[f"{env_id}/{label}/{name}"] = {"success_rate": stats.success_rate,
                                                "mean_colors_visited": float(stats.colors_visited.mean()),
                                                "mean_length": float(stats.lengths.mean()), "endings": stats.ending_counts()}
            print(env_id, label, name, rows[f"{env_id}/{label}/{name}"], flush=True)
write_json_atomic(sys.argv[2], rows)
