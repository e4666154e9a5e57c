#!/bin/bash
# session 34 dev: the benchmark metacontroller recipe with final alpha 1.0 (results/tie_breaking)
cd /work/main && . .venv/bin/activate && export OMP_WAIT_POLICY=PASSIVE

python - <<'PY' || exit 1
import dataclasses
from agents.train_metacontroller import METACONTROLLER_PRESETS, train_metacontroller
from agents.pretrain import load_base_model
from agents.models.controller import freeze
from agents.training_utils import set_threads
from hier_envs.datasets import load_dataset
# the benchmark pipeline's metacontroller (pipeline_methods: the default preset, 2 threads) with α = 1.0 instead of 0.1
config = METACONTROLLER_PRESETS["default"]
config = dataclasses.replace(config, metacontroller=dataclasses.replace(config.metacontroller, kl_weight=1.0), num_threads=2)
set_threads(2)
base = freeze(load_base_model("runs/grid_default_s33/base_model/model.pt"))
print(train_metacontroller(config, base, load_dataset("runs/grid_default_s33/data_Dstar.npz"), "runs/alpha1_s34/mc",
                           progress=False), flush=True)
PY

export BASE_MODEL=runs/grid_default_s33/base_model/model.pt HELDOUT=runs/mc_sweep/heldout.npz
python results/metacontroller_kl_schedule/score_stops_dev.py results/tie_breaking/alpha1_switching.jsonl runs/alpha1_s34/mc/metacontroller.pt
python results/tie_breaking/colour_codes_dev.py runs/alpha1_s34/mc/metacontroller.pt results/tie_breaking/colour_codes_uniform_ties_alpha1.json 500 0-1-4-5-2-3 0-1-2-3-4-5-6-7-0-1-2-3

