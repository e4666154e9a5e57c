"""Dev: can the metacontroller's codes steer the frozen base model through a task if chosen right?
A stand-in policy plays, at its i-th decision, the mean code of the i-th subgoal of the task
(means of the integrated codes z_t over held-out D* steps labelled with that subgoal, at least
2 steps from a boundary), inside the internal-RL environment (β decides when it is asked).

usage: python oracle_codes_dev.py METACONTROLLER_PT EPISODES OUT.json TASK...
(environment: BASE_MODEL, default runs/grid_default/base_model/model.pt; HELDOUT, default
runs/mc_sweep/heldout.npz)"""
import json, os, sys
from pathlib import Path
import numpy as np, torch
from agents.internal_rl import InternalRLEnvironment
from agents.train_metacontroller import load_metacontroller
from agents.pretrain import load_base_model, batch_tensors
from agents.models.controller import freeze
from agents.training_utils import set_threads
from hier_envs.datasets import load_dataset

set_threads(1)
mc_path, episodes, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
tasks = [[int(c) for c in t.split("-")] for t in sys.argv[4:]]
base = freeze(load_base_model(os.environ.get("BASE_MODEL", "runs/grid_default/base_model/model.pt"))); layer = base.config.controlled_layer
mc = freeze(load_metacontroller(mc_path, base.config.width)).eval()
held = load_dataset(os.environ.get("HELDOUT", "runs/mc_sweep/heldout.npz"))
b = batch_tensors(held, np.arange(held.n_episodes))
with torch.no_grad():
    o = mc(base.forward_lower(b["observations"], layer), b["mask"], sample=False)
sub, mask = b["subgoals"], b["mask"].bool()
settled = mask.clone()
edge = torch.zeros_like(mask); edge[:, 1:] = (sub[:, 1:] != sub[:, :-1]) & mask[:, 1:]
for shift in (-2, -1, 0, 1, 2):
    settled &= ~torch.roll(edge, shift, 1)
codes = torch.stack([o.z[settled & (sub == k)].mean(0) for k in range(4)])  # (4, Z)
spread = [float(o.z[settled & (sub == k)].std(0).mean()) for k in range(4)]


class SubgoalCodes:
    """Duck-typed CodePolicy: decision i of an episode gets the code of the task's i-th subgoal."""
    def __init__(self, subgoals):
        self.subgoals = torch.tensor(subgoals)
        self.log_std = torch.full((codes.shape[1],), -20.0)
    def initial_state(self, n):
        return torch.zeros(n, 1)
    def step(self, residual, state):
        index = state[:, 0].long().clamp(max=len(self.subgoals) - 1)
        return state + 1, codes[self.subgoals[index]]
    def log_prob(self, mean, z):
        return torch.zeros(mean.shape[0])


rows = []
for task in tasks:
    subgoals = [task[i] // 2 for i in range(0, len(task), 2)]
    environment = InternalRLEnvironment(base, mc, "HierGrid-v0", episodes, 0.5, env_kwargs={"task": task})
    batch = environment.collect(SubgoalCodes(subgoals), seed=123, generator=torch.Generator().manual_seed(0))
    counts = batch.decision_mask.sum(1).float()
    rows.append({"task": "-".join(map(str, task)), "episodes": episodes, "success_rate": float(batch.returns.mean()),
                 "decisions_per_episode": float(counts.mean()), "mean_length": float(np.mean(batch.lengths))})
    print(json.dumps(rows[-1]), flush=True)
out.write_text(json.dumps({"checkpoint": mc_path, "code_norms": codes.norm(dim=1).tolist(),
                           "within_subgoal_std": spread, "rows": rows}, indent=1))
