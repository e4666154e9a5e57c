"""Diagnostic (not product code): the `default` layer-3 ground-truth controllers of window_dev.py
with greedy (argmax) actions instead of sampled ones, on `HierGrid-v0` and the pretraining tasks;
1,000 episodes each, seed 10,000 (the study's protocol otherwise).

usage: python greedy_dev.py OUT.json"""
import json, sys
import numpy as np, torch
from agents.pretrain import load_base_model
from agents.controllers import SubgoalControllers, evaluate_subgoal_controllers
from agents.models.controller import freeze
from hier_envs.tasks import GRID_PRETRAIN_TASKS

torch.set_num_threads(1)
model = freeze(load_base_model("runs/grid_default/base_model/model.pt")); model.eval()
ctrl = SubgoalControllers(model.config.width, 4, 16)
ctrl.load_state_dict(torch.load("results/ground_truth_window/controllers_layer3.pt"))
rows = []
for name, env_id, kwargs in [("HierGrid-v0", "HierGrid-v0", None),
                             ("pretraining tasks", "HierGrid-Pretrain-v0", {"tasks": GRID_PRETRAIN_TASKS})]:
    st = evaluate_subgoal_controllers(model, ctrl, 3, env_id=env_id, n_episodes=1000, greedy=True, env_kwargs=kwargs)
    rows.append({"pool": name, "greedy": True, "episodes": 1000, "success": st.success_rate,
                 "colors_hist": np.bincount(st.colors_visited, minlength=13).tolist(), "mean_length": float(st.lengths.mean())})
    print(json.dumps(rows[-1]), flush=True)
json.dump(rows, open(sys.argv[1], "w"), indent=1)
