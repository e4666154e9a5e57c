"""Dev: the study's composition table for the 6,000-step (max_distance 128) model's layer-3 controllers
(runs/grid_diag3.py fit, the study's controller preset), 1,000 episodes per pool, seed 10000."""
import json, torch, numpy as np
from agents.pretrain import load_base_model
from agents.base_model_study import subgoal_completion_rates
from agents.controllers import SubgoalControllers, evaluate_subgoal_controllers
from agents.models.controller import freeze
from hier_envs.tasks import grid_composition_task_sets
torch.set_num_threads(1)
model = freeze(load_base_model("runs/grid_base1t/model.pt"))
ctrl = SubgoalControllers(model.config.width, 4, 16); ctrl.load_state_dict(torch.load("runs/grid_base1t/gt_ctrl_l3.pt")); freeze(ctrl)
out = {}
for name, tasks in grid_composition_task_sets().items():
    st = evaluate_subgoal_controllers(model, ctrl, 3, env_id="HierGrid-Pretrain-v0", n_episodes=1000, seed=10_000, env_kwargs={"tasks": tasks})
    counts = np.bincount(st.colors_visited, minlength=len(tasks[0]) + 1).tolist()
    out[name] = {"success_rate": st.success_rate, "episodes": 1000, "mean_colors_visited": float(st.colors_visited.mean()),
                 "colors_visited_counts": counts, "subgoal_completion": subgoal_completion_rates(counts)}
    print(name, json.dumps(out[name]), flush=True)
json.dump(out, open("runs/grid_composition_6k.json", "w"), indent=2)
