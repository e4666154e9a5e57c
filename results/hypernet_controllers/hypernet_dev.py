"""Ground-truth controllers in the paper's own form (SPEC A§4.2 "Implementation", App. C.3).

Development script (session 29, issue #3). The paper fits its ground-truth-label controllers as a
metacontroller with beta = 1 and z = onehot(subgoal, K) fed to the hypernetwork decoder f_hyp (one
hidden layer of 32, low rank 16). `agents.controllers.SubgoalControllers` instead stores one (A, B)
pair per subgoal, starting at A = 0 (the identity), on the INFERRED ground that a decoder applied to
a one-hot input is a lookup. The two have the same expressivity but not the same training
dynamics: the decoder shares its output bias across subgoals, its weight decay acts on shared
weights, and at `init_scale` 1.0 it starts away from the identity. This script fits the decoder form
with everything else as in `train_subgoal_controllers` (AdamW, lr, weight decay, steps, batch,
batch sampling) and scores it with `evaluate_subgoal_controllers` on the same four task pools
and seed as the study's composition stage.

Usage (from the repository root):
    python results/hypernet_controllers/hypernet_dev.py RUN_DIR LAYER INIT_SCALE OUT_JSON [EPISODES [SEED [TRAIN_STEPS]]]

THREADS (1) sets the torch threads. INIT_SCALE 0 fits the package's SubgoalControllers in the lookup
form instead (a check that this loop reproduces the study's own controllers and composition numbers).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

import numpy as np
import torch
from torch import Tensor, nn

from agents.controllers import CONTROLLER_PRESETS, SubgoalControllers, controlled_action_nll, evaluate_subgoal_controllers
from agents.lower_residuals import LowerResiduals
from agents.models.controller import ControllerHypernetwork, freeze
from agents.pretrain import batch_tensors, load_base_model
from agents.training_utils import machine_description
from hier_envs.datasets import load_dataset
from hier_envs.tasks import grid_composition_task_sets


class HypernetSubgoalControllers(nn.Module):
    """U_g = f_hyp(onehot(g)): the paper's C.3 form, same call signature as SubgoalControllers."""

    def __init__(self, width: int, n_subgoals: int, rank: int, init_scale: float) -> None:
        super().__init__()
        self.n_subgoals = n_subgoals
        self.decoder = ControllerHypernetwork(n_subgoals, 32, width, "low_rank", rank, init_scale)

    def forward(self, residual: Tensor, subgoals: Tensor) -> Tensor:
        codes = nn.functional.one_hot(subgoals, self.n_subgoals).to(residual.dtype)
        return self.decoder.control(residual, codes)


def main() -> None:
    run_dir, layer, init_scale, out_path = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    episodes = int(sys.argv[5]) if len(sys.argv) > 5 else 1000
    seed = int(sys.argv[6]) if len(sys.argv) > 6 else 0
    torch.set_num_threads(int(os.environ.get("THREADS", "1")))
    steps = int(sys.argv[7]) if len(sys.argv) > 7 else CONTROLLER_PRESETS["default"].train_steps
    config = dataclasses.replace(CONTROLLER_PRESETS["default"], seed=seed, train_steps=steps)
    model = freeze(load_base_model(f"{run_dir}/base_model/model.pt"))
    dstar = load_dataset(f"{run_dir}/data_Dstar.npz")
    torch.manual_seed(config.seed)
    if init_scale == 0:  # the package's own parameterisation, as a check that this loop reproduces the study
        controllers = SubgoalControllers(model.config.width, config.n_subgoals, config.rank, form="lookup")
    else:
        controllers = HypernetSubgoalControllers(model.config.width, config.n_subgoals, config.rank, init_scale)
    optimizer = torch.optim.AdamW(controllers.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    rng = np.random.default_rng([config.seed, 23])
    lower = LowerResiduals(model, dstar, layer)
    start = time.perf_counter()
    losses = []
    for _ in range(config.train_steps):
        indices = rng.integers(dstar.n_episodes, size=config.batch_size)
        batch = batch_tensors(dstar, indices)
        controlled = controllers(lower(indices, batch), batch["subgoals"].clamp(min=0))
        loss = model.loss(model.forward_upper(controlled, layer), batch, 0.0)["action_nll"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    fit_seconds = time.perf_counter() - start
    controllers = freeze(controllers)
    held_out = dstar  # the study scores the training D*; the NLL here is a fit check only
    result = {
        "run_dir": run_dir, "layer": layer, "init_scale": init_scale, "config": config.__dict__,
        "fit_seconds": fit_seconds, "loss_first_last": [losses[0], float(np.mean(losses[-50:]))],
        "dstar_action_nll": controlled_action_nll(model, controllers, held_out, layer),
        "machine": machine_description(), "pools": {},
    }
    for name, tasks in grid_composition_task_sets().items():
        stats = evaluate_subgoal_controllers(model, controllers, layer, n_episodes=episodes, seed=10_000,
                                             env_kwargs={"tasks": tasks})
        counts = np.bincount(stats.colors_visited, minlength=len(tasks[0]) + 1)
        result["pools"][name] = {"success_rate": stats.success_rate, "episodes": episodes,
                                 "colors_visited_counts": counts.tolist()}
        print(name, stats.success_rate, flush=True)
    with open(out_path, "w") as handle:
        json.dump(result, handle, indent=1)


if __name__ == "__main__":
    main()
