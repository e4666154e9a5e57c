"""Dev: agents.internal_rl_study.distortion_references on a given base model, the 300 held-out D*
episodes of runs/mc_sweep/heldout.npz, CONTROLLER_PRESETS["default"]; JSON to argv[2]."""
import json, sys, time
from pathlib import Path
import torch
from agents.controllers import CONTROLLER_PRESETS
from agents.internal_rl_study import distortion_references
from agents.models.controller import freeze
from agents.pretrain import load_base_model
from hier_envs.datasets import load_dataset
torch.set_num_threads(2)
base = freeze(load_base_model(sys.argv[1]))
tic = time.perf_counter()
refs = distortion_references(base, load_dataset("runs/grid_default/data_Dstar.npz"), load_dataset("runs/mc_sweep/heldout.npz"),
                             base.config.controlled_layer, CONTROLLER_PRESETS["default"], progress=False)
refs.update(base_model=sys.argv[1], heldout="runs/mc_sweep/heldout.npz (300 episodes)", seconds=round(time.perf_counter() - tic))
Path(sys.argv[2]).write_text(json.dumps(refs, indent=2))
print(json.dumps(refs))
