"""Dev: a long grid metacontroller run with the package option `switch_learning_rate_scale`
(MetacontrollerTrainConfig), scored on the 300 held-out D* episodes at each stop.

usage: python switch_rate_dev.py RUN_DIR ALPHA SCALE SEED STOPS [OUT.jsonl]
  base model runs/grid_default/base_model/model.pt (6,000 steps, the default study's pretraining),
  D* runs/grid_default/data_Dstar.npz, held-out runs/mc_sweep/heldout.npz (ε = 0, seed 1002).
Re-running resumes from RUN_DIR/latest.pt (train_metacontroller's own checkpoints).
THREADS (environment, default 2) sets torch's threads, e.g. 1 each for two runs side by side."""
import dataclasses, json, os, sys, time
from pathlib import Path
import numpy as np, torch
from agents.train_metacontroller import METACONTROLLER_PRESETS, load_metacontroller, train_metacontroller
from agents.pretrain import load_base_model, batch_tensors
from agents.models.controller import freeze
from agents.training_utils import set_threads
from agents.switching_analysis import collect_betas, switching_scores
from hier_envs.datasets import load_dataset

run_dir, alpha, scale, seed = Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
stops = [int(s) for s in sys.argv[5].split(",")]
out = Path(sys.argv[6]) if len(sys.argv) > 6 else run_dir / "stops.jsonl"
threads = int(os.environ.get("THREADS", "2"))
set_threads(threads)
base = freeze(load_base_model("runs/grid_default/base_model/model.pt")); layer = base.config.controlled_layer
dstar = load_dataset("runs/grid_default/data_Dstar.npz"); held = load_dataset("runs/mc_sweep/heldout.npz")
preset = METACONTROLLER_PRESETS["default"]
cfg = dataclasses.replace(preset, train_steps=max(stops), checkpoint_every=250, log_every=50, seed=seed,
                          switch_learning_rate_scale=scale, num_threads=threads, early_kl_weight=None, early_kl_steps=0,
                          metacontroller=dataclasses.replace(preset.metacontroller, kl_weight=alpha))
b = batch_tensors(held, np.arange(held.n_episodes))
mask = b["mask"].bool(); sub = b["subgoals"]
boundary = torch.zeros_like(mask); boundary[:, 1:] = (sub[:, 1:] != sub[:, :-1]) & mask[:, 1:]
other = mask.clone(); other[:, 0] = False; other &= ~boundary
with torch.no_grad():
    residual = base.forward_lower(b["observations"], layer)
done = {json.loads(line)["step"] for line in out.read_text().splitlines()} if out.exists() else set()
for stop in stops:
    tic = time.perf_counter()
    path = train_metacontroller(cfg, base, dstar, run_dir, stop_after=stop, progress=False)
    if stop in done:
        continue
    mc = freeze(load_metacontroller(path, base.config.width)).eval()
    with torch.no_grad():
        o = mc(residual, b["mask"], sample=False)
    betas = collect_betas(base, mc, held, np.arange(held.n_episodes), layer)
    scores = switching_scores(betas)
    early = late = 0  # switches with no true boundary within ±1: at t <= 2 (start of episode) or later
    for beta, subgoals in betas:
        edges = np.flatnonzero(subgoals[1:] != subgoals[:-1]) + 1
        for t in np.flatnonzero(beta[1:] >= 0.5) + 1:
            if not np.any(np.abs(edges - t) <= 1):
                early, late = early + (t <= 2), late + (t > 2)
    row = {"step": stop,
           "unmatched_switches_per_episode_t_le_2": round(early / len(betas), 3),
           "unmatched_switches_per_episode_t_gt_2": round(late / len(betas), 3), "alpha": alpha, "switch_lr_scale": scale, "seed": seed,
           "beta_boundary": round(float(o.beta[boundary].mean()), 4), "beta_other": round(float(o.beta[other].mean()), 4),
           **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in scores.items() if k != "beta_histogram_edges"},
           "train_s_this_stop": round(time.perf_counter() - tic, 1)}
    with out.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)
