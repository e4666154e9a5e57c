"""Greedy against sampled actions under the ground-truth controllers (development script,
session 38, issue #3).

The study scores the ground-truth controllers with *sampled* actions (SPEC A§4.2 does not say
which the paper uses). This script rescores fitted controllers on `HierGrid-v0` both ways with
the package's own `evaluate_subgoal_controllers` (1,000 episodes, env seed 10,000, the study's
protocol), to measure how much of the gap to the paper's 0.5-0.7 is action sampling.

Usage (from the repository root):
    python results/base_model_default_seed1/greedy_eval_dev.py BASE_MODEL OUT_JSON CONTROLLERS.pt [...]
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch

from agents.checkpoints import load_checkpoint
from agents.controllers import SUBGOAL_CONTROLLERS_KIND, evaluate_subgoal_controllers, load_subgoal_controllers
from agents.models.controller import freeze
from agents.pretrain import load_base_model
from agents.training_utils import machine_description, write_text_atomic


def main() -> None:
    base_model_path, out_path, controller_paths = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    model = freeze(load_base_model(base_model_path))
    rows = []
    for path in controller_paths:
        record = load_checkpoint(path, expected_kind=SUBGOAL_CONTROLLERS_KIND)  # verified read, for layer and seed
        layer = int(record["layer"])
        controllers = freeze(load_subgoal_controllers(path, model.config.width, expect_base_model=model))
        row = {"controllers": path, "layer": layer, "seed": record["config"]["seed"]}
        for greedy in (False, True):
            start = time.perf_counter()
            stats = evaluate_subgoal_controllers(model, controllers, layer, "HierGrid-v0", 1000, 10_000, greedy=greedy)
            key = "greedy" if greedy else "sampled"
            row[key] = {"success_rate": stats.success_rate, "mean_colors_visited": float(stats.colors_visited.mean()),
                        "endings": stats.ending_counts(), "seconds": time.perf_counter() - start}
            print(path, key, stats.success_rate, float(stats.colors_visited.mean()), flush=True)
        rows.append(row)
        write_text_atomic(out_path, json.dumps({"base_model": base_model_path, "env_id": "HierGrid-v0",
                                                "episodes": 1000, "env_seed": 10_000, "machine": machine_description(),
                                                "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
