"""Diagnostic (not product code): is the ground-truth controllers' failure on `HierGrid-v0` one of
magnitude? Scales each trained layer-3 controller's update ``A (Bᵀ e)`` by a gain g at inference
(g = 1: the controller as trained) and evaluates on `HierGrid-v0` and the composition pools.

usage: python gain_dev.py CONTROLLERS.pt GAINS OUT.jsonl   (GAINS e.g. 1,1.5,2,3,4; rank-16 controllers)
environment: THREADS (1), EPISODES (1000)
"""
import json, os, sys, time
from pathlib import Path
import numpy as np, torch
from agents.pretrain import load_base_model
from agents.controllers import SubgoalControllers, evaluate_subgoal_controllers
from agents.models.controller import freeze
from hier_envs.tasks import grid_composition_task_sets

torch.set_num_threads(int(os.environ.get("THREADS", "1")))
ctrl_path, gains, out = Path(sys.argv[1]), [float(g) for g in sys.argv[2].split(",")], Path(sys.argv[3])
n_episodes, layer = int(os.environ.get("EPISODES", "1000")), 3
model = freeze(load_base_model("runs/grid_default/base_model/model.pt")); model.eval()
state = torch.load(ctrl_path)
ctrl = SubgoalControllers(model.config.width, 4, state["a"].shape[-1])
pools = {"HierGrid-v0": ("HierGrid-v0", None)}
pools.update({name: ("HierGrid-Pretrain-v0", {"tasks": tasks}) for name, tasks in grid_composition_task_sets().items()
              if "post-training" not in name and "6 subgoals" not in name})
for gain in gains:
    ctrl.load_state_dict({"a": state["a"] * gain, "b": state["b"]})  # e + g·A(Bᵀe)
    for name, (env_id, kwargs) in pools.items():
        tic = time.time()
        st = evaluate_subgoal_controllers(model, ctrl, layer, env_id=env_id, n_episodes=n_episodes, env_kwargs=kwargs)
        row = {"controllers": str(ctrl_path), "gain": gain, "pool": name, "episodes": n_episodes, "success": st.success_rate,
               "colors_hist": np.bincount(st.colors_visited, minlength=13).tolist(), "eval_s": round(time.time() - tic, 1)}
        with out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
