"""Dev (issue #7): is the ant metacontroller's full-linear decoder too loud at initialisation?

The hypernetwork emits U (128 x 128) through a variance-scaled MLP with ``init_scale`` 1.0
(``MetacontrollerConfig``). For the ant's full linear controller this makes ``U e`` several times
larger than ``e`` for a code drawn from the prior, so the controlled model starts far worse than
the plain one. Three modes:

    probe OUT.json                 held-out action NLL (codes sampled as in training) and
                                   |U e| / |e| at initialisation, for several init scales
    train SCALE STEPS OUT.json [ALPHA]
                                   train the ant default metacontroller with that init scale
                                   (and α, default the preset's 0.1; otherwise the preset) and
                                   score it as the study does: held-out rate-distortion and
                                   switching (±5 steps)
    score MC.pt OUT.json           the same scores for an existing metacontroller (α = 0.1)

Run dir (env RUN_DIR, default runs/ant_lam_full) holds the base model and D*; the held-out set is
runs/ant_lam_full_irl/data_Dstar_heldout.npz (written by agents.internal_rl_study).
"""
import dataclasses
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from agents.controllers import controlled_action_nll
from agents.internal_rl_study import heldout_rate_distortion
from agents.metacontroller import Metacontroller
from agents.models.controller import freeze
from agents.pretrain import batch_tensors, load_base_model
from agents.switching_analysis import collect_betas, switching_scores
from agents.train_metacontroller import ANT_METACONTROLLER_PRESETS, load_metacontroller, train_metacontroller
from hier_envs.atomic_io import write_json_atomic
from hier_envs.datasets import load_dataset

torch.set_num_threads(2)
run_dir = Path(os.environ.get("RUN_DIR", "runs/ant_lam_full"))
base = freeze(load_base_model(run_dir / "base_model" / "model.pt"))
heldout = load_dataset(Path("runs/ant_lam_full_irl/data_Dstar_heldout.npz"))
layer = base.config.controlled_layer
preset = ANT_METACONTROLLER_PRESETS["default"]


def base_nll(dataset) -> float:
    """The plain model's held-out action NLL per step (no controller)."""
    with torch.no_grad():
        return controlled_action_nll(base, None, dataset, layer)


mode = sys.argv[1]
if mode == "probe":
    rows = {"no_controller": {"action_nll": base_nll(heldout)}}
    batch = batch_tensors(heldout, np.arange(32))
    with torch.no_grad():
        residual = base.forward_lower(batch["observations"], layer)
        for scale in (1.0, 0.3, 0.1, 0.03, 0.01):
            torch.manual_seed(preset.seed)
            config = dataclasses.replace(preset.metacontroller, init_scale=scale)
            metacontroller = Metacontroller(base.config.width, config)
            stats = heldout_rate_distortion(base, metacontroller, heldout, layer, config.kl_weight)
            output = metacontroller(residual, batch["mask"], generator=torch.Generator().manual_seed(0))
            mask = batch["mask"].bool()
            update = (output.controlled - residual).norm(dim=-1)[mask]
            ratio = float((update / residual.norm(dim=-1)[mask]).median())
            rows[f"init_scale_{scale}"] = {**stats, "median_update_over_residual": ratio}
            print(scale, rows[f"init_scale_{scale}"], flush=True)
    write_json_atomic(Path(sys.argv[2]), {"heldout_episodes": heldout.n_episodes, "rows": rows})
elif mode in ("train", "score"):
    if mode == "train":
        scale, steps, out = float(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
        alpha = float(sys.argv[5]) if len(sys.argv) > 5 else preset.metacontroller.kl_weight
        config = dataclasses.replace(preset, train_steps=steps, metacontroller=dataclasses.replace(
            preset.metacontroller, init_scale=scale, kl_weight=alpha))
        dstar = load_dataset(run_dir / "data_Dstar.npz")
        suffix = "" if alpha == preset.metacontroller.kl_weight else f"_alpha{alpha}"
        path = train_metacontroller(config, base, dstar, Path(f"runs/ant_mc_init{scale}_steps{steps}{suffix}"))
        result = {"init_scale": scale, "train_steps": steps, "kl_weight": alpha}
    else:
        path, out = Path(sys.argv[2]), Path(sys.argv[3])
        result = {"metacontroller": str(path)}
    metacontroller = freeze(load_metacontroller(path, base.config.width))
    stats = heldout_rate_distortion(base, metacontroller, heldout, layer, result.get("kl_weight", 0.1))
    episodes = collect_betas(base, metacontroller, heldout, np.arange(heldout.n_episodes), layer)
    switching = switching_scores(episodes, tolerance=5)
    result.update({"heldout": stats, "no_controller_nll": base_nll(heldout),
                   "switching": {k: v for k, v in switching.items() if not k.startswith("beta_histogram")},
                   "beta_histogram": switching["beta_histogram"]})
    write_json_atomic(out, result)
    print(json.dumps(result, indent=1))
else:
    raise SystemExit(f"unknown mode {mode!r}")
