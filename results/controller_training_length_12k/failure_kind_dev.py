"""Diagnostic: how GT-controlled episodes end (timeout vs wrong colour) by subgoal reached, 12k backbone, 1,600-step controllers."""
import json, torch, numpy as np
from agents.pretrain import load_base_model
from agents.controllers import SubgoalControllers, evaluate_subgoal_controllers
from agents.models.controller import freeze
from hier_envs.tasks import grid_composition_task_sets
torch.set_num_threads(1)
model = freeze(load_base_model("runs/grid_default12k/base_model/model.pt")); model.eval()
ctrl = SubgoalControllers(model.config.width, 4, 16); ctrl.load_state_dict(torch.load("runs/ctrl_len/ctrl_128_1600.pt"))
for name, tasks in grid_composition_task_sets().items():
    st = evaluate_subgoal_controllers(model, ctrl, 3, env_id="HierGrid-Pretrain-v0", n_episodes=500, env_kwargs={"tasks": tasks})
    rows = {}
    for c in range(0, len(tasks[0]), 2):
        sel = (st.colors_visited >= c) & (st.colors_visited < c + 2) & ~st.success
        if sel.any():
            rows[f"subgoal{c//2+1}"] = {"failed": int(sel.sum()), "timeouts": int((st.lengths[sel] >= 100).sum()),
                                        "mean_len": round(float(st.lengths[sel].mean()), 1)}
    ok = st.success
    print(json.dumps({"pool": name, "success": st.success_rate, "mean_len_success": round(float(st.lengths[ok].mean()), 1) if ok.any() else None, **rows}), flush=True)
