"""More controller seeds on the ε = 0 backbone (development script, session 31, issue #3).

The study (`report.md` here) fits the ground-truth controllers once per layer, with
`ControllerConfig.seed` 0. This script refits them with another seed through the package's own
`train_subgoal_controllers` (the `default` preset, paper form) and scores them as the study's
composition stage does: 1,000 episodes per pool of `grid_composition_task_sets`, seed 10,000,
sampled actions.

Usage (from the repository root):
    THREADS=1 python results/base_model_default_eps0/controller_seeds_dev.py RUN_DIR LAYER SEED OUT_JSON
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

import numpy as np
import torch

from agents.controllers import CONTROLLER_PRESETS, evaluate_subgoal_controllers, train_subgoal_controllers
from agents.models.controller import freeze
from agents.pretrain import load_base_model
from agents.training_utils import machine_description, write_text_atomic
from hier_envs.datasets import load_dataset
from hier_envs.tasks import grid_composition_task_sets


def main() -> None:
    run_dir, layer, seed, out_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    torch.set_num_threads(int(os.environ.get("THREADS", "1")))
    config = dataclasses.replace(CONTROLLER_PRESETS["default"], seed=seed)
    model = freeze(load_base_model(f"{run_dir}/base_model/model.pt"))
    dstar = load_dataset(f"{run_dir}/data_Dstar.npz")
    start = time.perf_counter()
    controllers, losses = train_subgoal_controllers(model, dstar, layer, config, progress=False)
    result = {
        "run_dir": run_dir, "layer": layer, "config": config.settings(), "fit_seconds": time.perf_counter() - start,
        "loss_first_last50": [losses[0], float(np.mean(losses[-50:]))], "machine": machine_description(), "pools": {},
    }
    controllers = freeze(controllers)
    for name, tasks in grid_composition_task_sets().items():
        stats = evaluate_subgoal_controllers(model, controllers, layer, n_episodes=1000, seed=10_000,
                                             env_kwargs={"tasks": tasks})
        counts = np.bincount(stats.colors_visited, minlength=len(tasks[0]) + 1)
        result["pools"][name] = {"success_rate": stats.success_rate, "episodes": 1000,
                                 "colors_visited_counts": counts.tolist()}
        print(name, stats.success_rate, flush=True)
    write_text_atomic(out_path, json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
