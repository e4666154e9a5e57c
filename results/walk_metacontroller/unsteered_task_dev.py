"""Diagnostic (not product code): the unsteered backbone on pinned tasks, the reference for the
pinned-task internal-RL curves in this folder (1,000 episodes per task, env seed 10,000, sampled
actions, as the base-model study's unsteered row).
usage: python unsteered_task_dev.py OUT.json TASK...   (environment: RUN_DIR, THREADS=1)
"""
import json, os, sys
from pathlib import Path
import torch
from agents.models.controller import freeze
from agents.pretrain import load_base_model
from agents.rollouts import evaluate_policy

torch.set_num_threads(int(os.environ.get("THREADS", "1")))
out, tasks = Path(sys.argv[1]), sys.argv[2:]
run_dir = Path(os.environ.get("RUN_DIR", "runs/grid_default"))
model = freeze(load_base_model(run_dir / "base_model" / "model.pt")); model.eval()
rows = []
for task in tasks:
    stats = evaluate_policy(model, "HierGrid-v0", 1000, seed=10_000, env_kwargs={"task": [int(c) for c in task.split("-")]})
    rows.append({"task": task, "success_rate": stats.success_rate, "mean_length": float(stats.lengths.mean()),
                 "mean_colors_visited": float(stats.colors_visited.mean())})
    print(json.dumps(rows[-1]), flush=True)
out.write_text(json.dumps({"run_dir": str(run_dir), "episodes": 1000, "seed": 10_000, "greedy": False, "rows": rows}, indent=1))
