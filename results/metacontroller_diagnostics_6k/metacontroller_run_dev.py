"""Dev: metacontroller runs with metacontroller-config (mc.*) and train-config (tr.*) overrides; held-out F1."""
import dataclasses, json, sys, time
from pathlib import Path
import numpy as np
from agents.internal_rl_study import heldout_rate_distortion
from agents.pretrain import load_base_model
from agents.switching_analysis import collect_betas, switching_scores
from agents.train_metacontroller import METACONTROLLER_PRESETS, load_metacontroller, train_metacontroller
from agents.training_utils import set_threads
from agents.models.controller import freeze
from hier_envs.datasets import load_dataset
base_path, out, steps, threads = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
settings = [dict(kv.split("=") for kv in arg.split(",")) for arg in sys.argv[5:]]
set_threads(threads)
base = freeze(load_base_model(base_path)); layer = base.config.controlled_layer
dstar = load_dataset("runs/grid_default/data_Dstar.npz")
held = load_dataset("runs/mc_sweep/heldout.npz")
def conv(v):
    if v in ("True", "False"): return v == "True"
    try: return int(v)
    except ValueError:
        try: return float(v)
        except ValueError: return v
for setting in settings:
    mc_kw = {k[3:]: conv(v) for k, v in setting.items() if k.startswith("mc.")}
    tr_kw = {k[3:]: conv(v) for k, v in setting.items() if k.startswith("tr.")}
    name = "_".join(f"{k}{v}" for k, v in setting.items())
    cfg = METACONTROLLER_PRESETS["default"]
    cfg = dataclasses.replace(cfg, train_steps=steps, checkpoint_every=max(steps // 4, 1), log_every=50, num_threads=threads,
                              metacontroller=dataclasses.replace(cfg.metacontroller, **mc_kw), **tr_kw)
    t = time.time()
    path = train_metacontroller(cfg, base, dstar, out / name, progress=False)
    mc = freeze(load_metacontroller(path, base.config.width))
    scores = switching_scores(collect_betas(base, mc, held, np.arange(held.n_episodes), layer))
    rd = heldout_rate_distortion(base, mc, held, layer, cfg.metacontroller.kl_weight)
    print(json.dumps({"setting": setting, "f1": scores["f1"], "precision": scores.get("precision"), "recall": scores.get("recall"),
                      "switches": scores["switches_per_episode"], **rd, "seconds": round(time.time() - t)}), flush=True)
