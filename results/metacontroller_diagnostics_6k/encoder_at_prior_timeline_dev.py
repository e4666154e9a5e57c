"""Dev: the encoder-at-prior diagnostic over training (alpha = 0.01, default metacontroller preset,
400 steps, scored on held-out D* every 50 steps via stop_after/resume)."""
import dataclasses, json, sys
from pathlib import Path
import numpy as np, torch
from agents.pretrain import load_base_model, batch_tensors
from agents.models.controller import freeze
from agents.train_metacontroller import METACONTROLLER_PRESETS, load_metacontroller, train_metacontroller
from agents.training_utils import set_threads
from hier_envs.datasets import load_dataset
set_threads(2)
base = freeze(load_base_model("runs/grid_base1t/model.pt")); layer = base.config.controlled_layer
dstar = load_dataset("runs/grid_default/data_Dstar.npz"); held = load_dataset("runs/mc_sweep/heldout.npz")
cfg = METACONTROLLER_PRESETS["default"]
cfg = dataclasses.replace(cfg, train_steps=400, checkpoint_every=50, log_every=50,
                          metacontroller=dataclasses.replace(cfg.metacontroller, kl_weight=0.01))
b = batch_tensors(held, np.arange(held.n_episodes))
mask = b["mask"].bool(); sub = b["subgoals"]
boundary = torch.zeros_like(mask); boundary[:, 1:] = (sub[:, 1:] != sub[:, :-1]) & mask[:, 1:]
other = mask.clone(); other[:, 0] = False; other &= ~boundary
with torch.no_grad():
    residual = base.forward_lower(b["observations"], layer)
rows = []
for stop in range(50, 401, 50):
    path = train_metacontroller(cfg, base, dstar, Path(sys.argv[1]), stop_after=stop, progress=False)
    mc = freeze(load_metacontroller(path, base.config.width)).eval()
    with torch.no_grad():
        out = mc(residual, b["mask"], generator=torch.Generator().manual_seed(0))
    z_prev = torch.cat([torch.zeros_like(out.z[:, :1]), out.z[:, :-1]], 1)
    row = {"step": stop}
    for name, sel in (("boundary", boundary), ("other", other)):
        row[name] = {"beta": round(float(out.beta[sel].mean()), 4), "kl": round(float(out.kl[sel].mean()), 3),
                     "|mu|": round(float(out.mean[sel].norm(dim=-1).mean()), 3),
                     "|z_prev|": round(float(z_prev[sel].norm(dim=-1).mean()), 3)}
    row["kl_t0"] = round(float(out.kl[:, 0].mean()), 2)
    rows.append(row); print(json.dumps(row), flush=True)
