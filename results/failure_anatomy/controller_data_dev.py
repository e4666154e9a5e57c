"""Diagnostic (not product code): ground-truth controllers fitted on noisy expert data (session 15).

teacher_forced_dev.py and heading_dev.py show that the layer-3 controllers, fitted on D* (ε = 0,
SPEC A§4.2), keep the model on a shortest path far better on expert states (p_optimal 0.92) than
on its own rollouts (0.82): D* never shows a state after a mistake, so the controllers never learn
to hold a subgoal there. This fits the same controllers (same ControllerConfig: rank 16, 800
steps at batch 128, lr 1e-3, wd 0.03, seed 0) on the first N episodes of the run's D (ε = 0.1,
non-terminating random moves, subgoal-labelled like D*), and scores them on the study's 2 × 2
composition table (1,000 episodes per pool, seed 10,000), as `composition_breakdown` does.
A deviation from the paper (which uses D*), measured here only.
usage: python noisy_controllers_dev.py LAYER N_EPISODES OUT.json   (environment: RUN_DIR, THREADS=2)
"""
import json, os, sys, time
from pathlib import Path
import numpy as np, torch
from agents.base_model_study import STUDY_PRESETS, composition_breakdown, subgoal_completion_rates
from agents.controllers import save_subgoal_controllers, train_subgoal_controllers
from agents.models.controller import freeze
from agents.pretrain import load_base_model
from hier_envs.datasets import load_dataset

torch.set_num_threads(int(os.environ.get("THREADS", "2")))
layer, n_episodes, out = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
run_dir = Path(os.environ.get("RUN_DIR", "runs/grid_default"))
config = STUDY_PRESETS["default"]
model = freeze(load_base_model(run_dir / "base_model" / "model.pt")); model.eval()
data_d = load_dataset(run_dir / "data_D.npz")
noisy = data_d.subset(np.arange(n_episodes))
ctrl_path = out.with_suffix(".pt")
t0 = time.time()
controllers, losses = train_subgoal_controllers(model, noisy, layer, config.controllers, progress=False)
save_subgoal_controllers(ctrl_path, controllers, config.controllers, layer, model)
train_s = time.time() - t0
_, pretrain_env_id = config.env_ids  # the pools pass tasks= to the pretraining env, as the study does
cells = composition_breakdown(model, ctrl_path, layer, config, pretrain_env_id)
result = {"run_dir": str(run_dir), "layer": layer, "controller_data": f"first {n_episodes} episodes of data_D.npz",
          "epsilon": data_d.metadata["generator"]["epsilon"], "controller_config": vars(config.controllers),
          "train_s": round(train_s, 1), "final_train_loss": float(np.mean(losses[-50:])),
          "pools": {name: {"success_rate": c["success_rate"], "episodes": c["episodes"],
                           "completion": subgoal_completion_rates(c["colors_visited_counts"]),
                           "colors_visited_counts": c["colors_visited_counts"]} for name, c in cells.items()}}
print(json.dumps(result, indent=1))
out.write_text(json.dumps(result, indent=1))
