"""Diagnostic (not product code): which codes steer the frozen backbone? (session 17)

Teacher-forced held-out action NLL (nats per step, expert episodes) of the backbone at its
controlled layer under the walk-trained metacontroller's decoder, with codes from:

- `none`: no controller (the unsteered backbone);
- `posterior mean`: the encoder means, integrated by β as in training (`sample=False`);
- `posterior sample`: sampled codes, as in training (generator seed 0);
- `zero`: z = 0 at every step;
- `prior, held`: one z ~ N(0, I) per episode, held for the whole episode;
- `prior, at true boundaries`: a fresh z ~ N(0, I) at t = 0 and at each ground-truth subgoal
  boundary: what internal RL's initial policy (std 1) plays if β fired exactly there;
- `subgoal means, at true boundaries`: the mean posterior-mean code of each subgoal (over these
  episodes' steps at least 2 from a boundary), switched at the true boundaries.

Also the same NLL on the first subgoal segment alone. If prior draws cost much more than no
controller at all, an internal-RL policy that starts at the prior derails the backbone before
it can learn (the episodes in `irl_hiergrid_v0_seed0_greedy*.csv` end after 12–16 steps).
usage: python code_nll_dev.py METACONTROLLER_PT OUT.json   (environment: RUN_DIR, WORK_DIR=runs/walk_mc, THREADS=1)
"""
import json, os, sys
from pathlib import Path
import numpy as np, torch
from agents.models.controller import freeze
from agents.pretrain import batch_tensors, load_base_model
from agents.train_metacontroller import load_metacontroller
from agents.training_utils import set_threads
from hier_envs.datasets import load_dataset

set_threads(int(os.environ.get("THREADS", "1")))
mc_path, out = Path(sys.argv[1]), Path(sys.argv[2])
run_dir = Path(os.environ.get("RUN_DIR", "runs/grid_default"))
work_dir = Path(os.environ.get("WORK_DIR", "runs/walk_mc"))
base = freeze(load_base_model(run_dir / "base_model" / "model.pt")); base.eval()
layer = base.config.controlled_layer
mc = freeze(load_metacontroller(mc_path, base.config.width)).eval()
result = {"metacontroller": str(mc_path), "run_dir": str(run_dir), "sets": {}}
for name in ("heldout_walks", "heldout_post"):
    held = load_dataset(work_dir / f"{name}.npz")
    b = batch_tensors(held, np.arange(held.n_episodes))
    mask, sub = b["mask"].bool(), b["subgoals"]
    n, steps = mask.shape
    new_segment = torch.zeros_like(mask); new_segment[:, 0] = True
    new_segment[:, 1:] = (sub[:, 1:] != sub[:, :-1]) & mask[:, 1:]
    segment = new_segment.long().cumsum(1) - 1  # (B, T) index of the true segment
    first = mask & (segment == 0)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        residual = base.forward_lower(b["observations"], layer)
        posterior_mean = mc(residual, b["mask"], sample=False).z
        posterior_sample = mc(residual, b["mask"], generator=g).z
        settled = mask.clone()
        for shift in (-2, -1, 0, 1, 2):
            settled &= ~torch.roll(new_segment & (torch.arange(steps) > 0), shift, 1)
        means = torch.stack([posterior_mean[settled & (sub == k)].mean(0) for k in range(4)])
        dim = posterior_mean.shape[-1]
        per_segment = torch.randn(n, 16, dim, generator=g)
        codes = {"posterior mean": posterior_mean, "posterior sample": posterior_sample,
                 "zero": torch.zeros_like(posterior_mean),
                 "prior, held": per_segment[:, :1].expand(n, steps, dim),
                 "prior, at true boundaries": torch.gather(per_segment, 1, segment.clamp(0, 15)[..., None].expand(n, steps, dim)),
                 "subgoal means, at true boundaries": means[sub.clamp(min=0)]}
        rows = {}
        for label, z in [("none", None), *codes.items()]:
            steered = residual if z is None else mc.apply_controller(residual, z)
            nll = base.action_nll_per_step(base.forward_upper(steered, layer), b["actions"])
            rows[label] = {"action_nll": float(nll[mask].mean()), "first_segment_action_nll": float(nll[first].mean())}
    result["sets"][name] = {"episodes": n, "steps": int(mask.sum()), "rows": rows,
                            "code_norms": means.norm(dim=1).tolist(), "posterior_mean_rms": float(posterior_mean[mask].pow(2).mean().sqrt())}
print(json.dumps(result, indent=1))
out.write_text(json.dumps(result, indent=1))
