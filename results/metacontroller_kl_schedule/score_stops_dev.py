"""Dev: score every RUN_DIR/step_<N>.pt (train_kl_schedule_dev.py's copies) or the checkpoints
named on the command line on the 300 held-out D* episodes (ε = 0, seed 1002): switching scores
(±1, β ≥ 0.5, encoder means, agents.switching_analysis), held-out action NLL and KL per step, one
JSON row per checkpoint appended to OUT.jsonl, and a β strip + histogram PNG next to it.

BASE_MODEL names another backbone's model.pt (default: the `default` study's runs/grid_default
one); the held-out episodes are read from runs/mc_sweep/heldout.npz, generated there with the
package's generator (300 episodes, ε = 0, seed 1002) when the file is missing, or from HELDOUT
when that names another dataset.

usage: python score_stops_dev.py OUT.jsonl RUN_DIR_OR_CHECKPOINT..."""
import json, os, sys
from pathlib import Path
import numpy as np, torch
from agents.checkpoints import load_checkpoint
from agents.train_metacontroller import METACONTROLLER_KIND, load_metacontroller
from agents.pretrain import load_base_model, batch_tensors
from agents.models.controller import freeze
from agents.switching_analysis import collect_betas, plot_switching, switching_scores
from agents.training_utils import set_threads
from hier_envs.datasets import generate_grid_dataset, load_dataset, save_dataset

out = Path(sys.argv[1])
paths = []
for arg in map(Path, sys.argv[2:]):
    paths += sorted(arg.glob("step_*.pt"), key=lambda p: int(p.stem.split("_")[1])) if arg.is_dir() else [arg]
set_threads(1)
base = freeze(load_base_model(os.environ.get("BASE_MODEL", "runs/grid_default/base_model/model.pt")))
layer = base.config.controlled_layer
DEFAULT_HELDOUT = Path("runs/mc_sweep/heldout.npz")
held_path = Path(os.environ.get("HELDOUT", DEFAULT_HELDOUT))
if not held_path.exists() and held_path == DEFAULT_HELDOUT:
    held_path.parent.mkdir(parents=True, exist_ok=True)
    save_dataset(generate_grid_dataset(300, 0.0, 1002, progress=False), held_path)
held = load_dataset(held_path)
b = batch_tensors(held, np.arange(held.n_episodes)); weights = b["mask"].to(torch.float32)
with torch.no_grad():
    residual = base.forward_lower(b["observations"], layer)
done = {json.loads(line)["checkpoint"] for line in out.read_text().splitlines()} if out.exists() else set()
for path in paths:
    if str(path) in done:
        continue
    record = load_checkpoint(path, expected_kind=METACONTROLLER_KIND)
    mc = freeze(load_metacontroller(path, base.config.width)).eval()
    with torch.no_grad():
        o = mc(residual, b["mask"], sample=False)
        nll = base.action_nll_per_step(base.forward_upper(o.controlled, layer), b["actions"])
    episodes = collect_betas(base, mc, held, np.arange(held.n_episodes), layer)
    scores = switching_scores(episodes)
    config = record["config"]
    row = {"checkpoint": str(path), "step": record["step"], "alpha": config["metacontroller"]["kl_weight"],
           "early_kl_weight": config.get("early_kl_weight"), "early_kl_steps": config.get("early_kl_steps", 0),
           "switch_lr_scale": config.get("switch_learning_rate_scale", 1.0), "seed": config["seed"],
           "heldout_action_nll": round(float((nll * weights).sum() / weights.sum()), 4),
           "heldout_kl_per_step": round(float((o.kl * weights).sum() / weights.sum()), 4),
           **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in scores.items() if k != "beta_histogram_edges"},
           "train_elapsed_s": round(record["elapsed_s"], 1)}
    plot_switching(episodes, scores, out.parent / f"{out.stem}_step{record['step']}.png")
    with out.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)
