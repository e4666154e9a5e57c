#!/bin/bash
# session 34 dev: metacontroller on D* from a deterministic-tie expert (results/tie_breaking)
cd /work/main && . .venv/bin/activate && export OMP_WAIT_POLICY=PASSIVE
date
python results/tie_breaking/make_data_dev.py runs/ties_s34 || exit 1
date
python - <<'PY' || exit 1
import dataclasses
from agents.train_metacontroller import METACONTROLLER_PRESETS, train_metacontroller
from agents.pretrain import load_base_model
from agents.models.controller import freeze
from agents.training_utils import set_threads
from hier_envs.datasets import load_dataset
# the benchmark pipeline's metacontroller (pipeline_methods: the default preset at the pipeline's α = 0.1), 1 thread
config = METACONTROLLER_PRESETS["default"]
config = dataclasses.replace(config, metacontroller=dataclasses.replace(config.metacontroller, kl_weight=0.1), num_threads=1)
set_threads(1)
base = freeze(load_base_model("runs/grid_default_s33/base_model/model.pt"))
print(train_metacontroller(config, base, load_dataset("runs/ties_s34/data_Dstar_first_optimal.npz"), "runs/ties_s34/mc",
                           progress=False), flush=True)
PY
date
export BASE_MODEL=runs/grid_default_s33/base_model/model.pt HELDOUT=runs/ties_s34/heldout_first_optimal.npz
python results/metacontroller_kl_schedule/score_stops_dev.py results/tie_breaking/switching.jsonl runs/ties_s34/mc/metacontroller.pt
python results/internal_rl_grid_dev/code_probe_dev.py runs/ties_s34/mc/metacontroller.pt results/tie_breaking/code_probe.json
date
