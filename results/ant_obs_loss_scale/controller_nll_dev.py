"""Dev: do the λ = 10/41 ant model's layer-4 ground-truth controllers carry the subgoal, or only
improve the gait? Teacher-forced action NLL per step on D* (the controllers' own training data,
so in-sample) with no controller, with each step's true label, and with every label rotated by
one colour ((g + 1) mod 4). If the true labels beat the rotated ones clearly, the controllers
encode where to go; if not, they fit something label-independent.

usage: python results/ant_obs_loss_scale/controller_nll_dev.py RUN_DIR OUT.json
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch

from agents.controllers import controlled_action_nll, load_subgoal_controllers
from agents.models.controller import freeze
from agents.pretrain import load_base_model
from hier_envs.atomic_io import write_json_atomic
from hier_envs.datasets import load_dataset

torch.set_num_threads(1)
run_dir = Path(sys.argv[1])
model = freeze(load_base_model(run_dir / "base_model" / "model.pt"))
controllers = freeze(load_subgoal_controllers(run_dir / "controllers" / "layer_4.pt", model.config.width))
dstar = load_dataset(run_dir / "data_Dstar.npz")


class Rotated(torch.nn.Module):
    def forward(self, residual, subgoals):
        return controllers(residual, (subgoals + 1) % 4)


with torch.no_grad():
    rows = {name: controlled_action_nll(model, ctrl, dstar, 4, chunk=64)
            for name, ctrl in (("none", None), ("true_labels", controllers), ("rotated_labels", Rotated()))}
rows["episodes"] = int(dstar.n_episodes)
print(rows)
write_json_atomic(sys.argv[2], rows)
