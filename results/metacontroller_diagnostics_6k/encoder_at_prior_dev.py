"""Dev: for a trained metacontroller, is the encoder at the prior where beta ~ 0 (so opening beta would erase the code)?
Held-out D*: per-step KL, |mu|, |mu - z_{t-1}| and beta at t = 0, at true boundaries and elsewhere."""
import json, sys, numpy as np, torch
from agents.pretrain import load_base_model, batch_tensors
from agents.models.controller import freeze
from agents.train_metacontroller import load_metacontroller
from hier_envs.datasets import load_dataset
torch.set_num_threads(2)
base = freeze(load_base_model("runs/grid_base1t/model.pt")); layer = base.config.controlled_layer
mc = freeze(load_metacontroller(sys.argv[1], base.config.width)).eval()
held = load_dataset("runs/mc_sweep/heldout.npz")
b = batch_tensors(held, np.arange(held.n_episodes))
with torch.no_grad():
    out = mc(base.forward_lower(b["observations"], layer), b["mask"], generator=torch.Generator().manual_seed(0))
mask = b["mask"].bool(); sub = b["subgoals"]
boundary = torch.zeros_like(mask); boundary[:, 1:] = (sub[:, 1:] != sub[:, :-1]) & mask[:, 1:]
first = torch.zeros_like(mask); first[:, 0] = True
other = mask & ~boundary & ~first
z_prev = torch.cat([torch.zeros_like(out.z[:, :1]), out.z[:, :-1]], 1)
res = {"metacontroller": sys.argv[1]}
for name, sel in (("t=0", first), ("true boundaries", boundary), ("other steps", other)):
    res[name] = {"steps": int(sel.sum()), "kl": float(out.kl[sel].mean()), "beta": float(out.beta[sel].mean()),
                 "|mu|": float(out.mean[sel].norm(dim=-1).mean()), "|z_prev|": float(z_prev[sel].norm(dim=-1).mean()),
                 "|mu - z_prev|": float((out.mean - z_prev)[sel].norm(dim=-1).mean())}
print(json.dumps(res, indent=1))
