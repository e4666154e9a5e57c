"""Dev: continue a grid metacontroller run from another run's checkpoint with changed settings
(α, switch scale, Gumbel-Sigmoid temperature), scored on the 300 held-out D* episodes at each stop.

usage: python finetune_dev.py SRC_LATEST RUN_DIR ALPHA SCALE GUMBEL_TAU SEED STOPS OUT.jsonl
The source checkpoint's weights, optimiser state and RNG states are kept; only its stored config is
replaced by the new one, so train_metacontroller resumes it as a run with the new settings.
With RAMP=R in the environment the preset's early phase (α = 0.01 to the preset's early_kl_steps:
2,000 since session 13) is kept and α then rises linearly to ALPHA over R steps (``kl_warmup_steps``).
EARLY=N (with RAMP) ends the early phase at step N instead (session 12's ramp1000_* rows: EARLY=4250);
resume such runs from step N or before."""
import dataclasses, json, os, sys, time
from pathlib import Path
import numpy as np, torch
from agents.train_metacontroller import METACONTROLLER_PRESETS, METACONTROLLER_KIND, load_metacontroller, train_metacontroller
from agents.checkpoints import load_checkpoint, save_checkpoint
from agents.pretrain import load_base_model, batch_tensors
from agents.models.controller import freeze
from agents.training_utils import set_threads
from agents.switching_analysis import collect_betas, switching_scores
from hier_envs.datasets import load_dataset

src, run_dir = Path(sys.argv[1]), Path(sys.argv[2])
alpha, scale, tau, seed = float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
stops = [int(s) for s in sys.argv[7].split(",")]
out = Path(sys.argv[8])
threads = int(os.environ.get("THREADS", "2"))
set_threads(threads)
base = freeze(load_base_model("runs/grid_default/base_model/model.pt")); layer = base.config.controlled_layer
dstar = load_dataset("runs/grid_default/data_Dstar.npz"); held = load_dataset("runs/mc_sweep/heldout.npz")
preset = METACONTROLLER_PRESETS["default"]
ramp = int(os.environ.get("RAMP", "0"))
early_steps = int(os.environ.get("EARLY", preset.early_kl_steps))
phase = ({"early_kl_weight": preset.early_kl_weight, "early_kl_steps": early_steps, "kl_warmup_steps": ramp}
         if ramp else {"early_kl_weight": None, "early_kl_steps": 0})
cfg = dataclasses.replace(preset, train_steps=max(stops), checkpoint_every=250, log_every=50, seed=seed,
                          switch_learning_rate_scale=scale, num_threads=threads, **phase,
                          metacontroller=dataclasses.replace(preset.metacontroller, kl_weight=alpha,
                                                             switch_gumbel_temperature=tau))
run_dir.mkdir(parents=True, exist_ok=True)
if not (run_dir / "latest.pt").exists():
    record = load_checkpoint(src, expected_kind=METACONTROLLER_KIND)
    record["config"] = cfg.to_dict()
    record["source_checkpoint"] = str(src)
    save_checkpoint(run_dir / "latest.pt", record)
    print("initialised from", src, "at step", record["step"], flush=True)
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
        nll = base.action_nll_per_step(base.forward_upper(o.controlled, layer), b["actions"])
    m = b["mask"].to(nll.dtype)
    betas = collect_betas(base, mc, held, np.arange(held.n_episodes), layer)
    scores = switching_scores(betas)
    early = late = adjacent = 0
    for beta, subgoals in betas:
        edges = np.flatnonzero(subgoals[1:] != subgoals[:-1]) + 1
        sw = np.flatnonzero(beta[1:] >= 0.5) + 1
        for t in sw:
            if not np.any(np.abs(edges - t) <= 1):
                early, late = early + (t <= 2), late + (t > 2)
        adjacent += int(np.sum(np.diff(sw) == 1))
    row = {"step": stop, "source": str(src), "alpha": alpha, "early_kl_steps": early_steps if ramp else None, "kl_ramp_steps": ramp, "switch_lr_scale": scale, "gumbel_tau": tau, "seed": seed,
           "heldout_action_nll": round(float((nll * m).sum() / m.sum()), 4),
           "heldout_kl": round(float((o.kl * m).sum() / m.sum()), 4),
           "unmatched_switches_per_episode_t_le_2": round(early / len(betas), 3),
           "unmatched_switches_per_episode_t_gt_2": round(late / len(betas), 3),
           "consecutive_switch_pairs_per_episode": round(adjacent / len(betas), 3),
           "beta_boundary": round(float(o.beta[boundary].mean()), 4), "beta_other": round(float(o.beta[other].mean()), 4),
           **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in scores.items() if k != "beta_histogram_edges"},
           "train_s_this_stop": round(time.perf_counter() - tic, 1)}
    with out.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)
