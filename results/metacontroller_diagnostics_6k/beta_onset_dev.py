"""Dev: how beta closes in the first 200 steps (default grid metacontroller preset on the 6k backbone,
alpha given), with an optional zero-initialised A half of the decoder output (U(z) = A B^T = 0 at init).
Scored on held-out D* at each stop via stop_after/resume: beta by time step, at true boundaries vs elsewhere."""
import dataclasses, json, os, sys
from pathlib import Path
import numpy as np, torch
import agents.train_metacontroller as tm
from agents.metacontroller import Metacontroller
from agents.pretrain import load_base_model, batch_tensors
from agents.models.controller import freeze
from agents.training_utils import set_threads
from agents.switching_analysis import collect_betas, switching_scores
from hier_envs.datasets import load_dataset
run_dir, alpha, variant = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
stops = [int(s) for s in sys.argv[4].split(",")]
extra = dict(kv.split("=") for kv in sys.argv[5].split(",")) if len(sys.argv) > 5 else {}
set_threads(2)
if variant == "zero_decoder":
    class ZeroDecoder(Metacontroller):
        def __init__(self, width, config):
            super().__init__(width, config)
            # zero only the rows emitting A (U = A B^T = 0 at init, B stays random: no saddle)
            n_a = self.decoder[-1].weight.shape[0] // 2
            torch.nn.init.zeros_(self.decoder[-1].weight[:n_a])
    tm.Metacontroller = ZeroDecoder
SWITCH_LR_SCALE = float(extra.pop("switch_lr_scale", 1.0))
if SWITCH_LR_SCALE != 1.0:  # two timescales: the switching unit learns SWITCH_LR_SCALE x slower
    built = []
    class Recorded(tm.Metacontroller):
        def __init__(self, width, config):
            super().__init__(width, config); built.append(self)
    tm.Metacontroller = Recorded
    _adamw = torch.optim.AdamW
    def split_adamw(params, lr, weight_decay):
        params = list(params); switch = {id(p) for p in built[-1].switch.parameters()}
        return _adamw([{"params": [p for p in params if id(p) not in switch]},
                       {"params": [p for p in params if id(p) in switch], "lr": lr * SWITCH_LR_SCALE}],
                      lr=lr, weight_decay=weight_decay)
    tm.torch.optim.AdamW = split_adamw
base = freeze(load_base_model("runs/grid_base1t/model.pt")); layer = base.config.controlled_layer
dstar = load_dataset("runs/grid_default/data_Dstar.npz"); held = load_dataset("runs/mc_sweep/heldout.npz")
cfg = tm.METACONTROLLER_PRESETS["default"]
mc_kw = {k: (v if k == "embedding" else float(v)) for k, v in extra.items()}
every = int(os.environ.get("EVERY", min(stops)))  # checkpoint/log interval (a continued run keeps its first run's)
cfg = dataclasses.replace(cfg, train_steps=max(stops), checkpoint_every=every, log_every=every,
                          metacontroller=dataclasses.replace(cfg.metacontroller, kl_weight=alpha, **mc_kw))
b = batch_tensors(held, np.arange(held.n_episodes))
mask = b["mask"].bool(); sub = b["subgoals"]
boundary = torch.zeros_like(mask); boundary[:, 1:] = (sub[:, 1:] != sub[:, :-1]) & mask[:, 1:]
other = mask.clone(); other[:, 0] = False; other &= ~boundary
with torch.no_grad():
    residual = base.forward_lower(b["observations"], layer)
for stop in stops:
    path = tm.train_metacontroller(cfg, base, dstar, run_dir, stop_after=stop, progress=False)
    mc = freeze(tm.load_metacontroller(path, base.config.width)).eval()
    with torch.no_grad():
        out = mc(residual, b["mask"], sample=False)
    by_t = [round(float(out.beta[:, t][mask[:, t]].mean()), 3) for t in range(1, 13)]
    scores = switching_scores(collect_betas(base, mc, held, np.arange(held.n_episodes), layer))
    print(json.dumps({"step": stop, "beta_boundary": round(float(out.beta[boundary].mean()), 4),
                      "beta_other": round(float(out.beta[other].mean()), 4), "beta_t1_12": by_t,
                      "f1": round(scores["f1"], 3), "switches": round(scores["switches_per_episode"], 2)}), flush=True)
