"""More controller seeds on the ε = 0 backbone (development script, session 31, issue #3).

The study (`report.md` here) fits the ground-truth controllers once per layer, with
`ControllerConfig.seed` 0. This script refits them with another seed through the package's own
`train_subgoal_controllers` (the `default` preset, paper form), saves them next to OUT_JSON and
scores them with the study's own composition stage (`composition_breakdown`: 1,000 episodes per
pool of `grid_composition_task_sets`, seed 10,000, sampled actions).

Usage (from the repository root):
    THREADS=1 python results/base_model_default_eps0/controller_seeds_dev.py RUN_DIR LAYER SEED OUT_JSON
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from agents.base_model_study import STUDY_PRESETS, composition_breakdown
from agents.controllers import CONTROLLER_PRESETS, save_subgoal_controllers, train_subgoal_controllers
from agents.models.controller import freeze
from agents.pretrain import load_base_model
from agents.training_utils import machine_description, write_text_atomic
from hier_envs.datasets import load_dataset


def main() -> None:
    run_dir, layer, seed, out_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    torch.set_num_threads(int(os.environ.get("THREADS", "1")))
    study = STUDY_PRESETS["default"]
    config = dataclasses.replace(CONTROLLER_PRESETS["default"], seed=seed)
    model = freeze(load_base_model(f"{run_dir}/base_model/model.pt"))
    dstar = load_dataset(f"{run_dir}/data_Dstar.npz")
    start = time.perf_counter()
    controllers, losses = train_subgoal_controllers(model, dstar, layer, config, progress=False)
    fit_seconds = time.perf_counter() - start
    controllers_path = out_path.with_suffix(".pt")
    save_subgoal_controllers(controllers_path, controllers, config, layer, base_model=model)
    pools = composition_breakdown(model, controllers_path, layer, study, study.env_ids[1])
    result = {
        "run_dir": run_dir, "layer": layer, "config": config.settings(), "fit_seconds": fit_seconds,
        "loss_first_last50": [losses[0], float(np.mean(losses[-50:]))], "machine": machine_description(),
        "pools": pools,
    }
    for name, cell in pools.items():
        print(name, cell["success_rate"], flush=True)
    write_text_atomic(out_path, json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
