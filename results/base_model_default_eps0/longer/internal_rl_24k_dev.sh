#!/bin/bash
# session 32 dev: default metacontroller + internal RL (seed 0) on the 24k ε=0 backbone
cd "$(git rev-parse --show-toplevel)" && . .venv/bin/activate
export SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy MUJOCO_GL=egl
python - <<'PY' || exit 1
from agents.train_metacontroller import METACONTROLLER_PRESETS, train_metacontroller
from agents.pretrain import load_base_model
from agents.models.controller import freeze
from agents.training_utils import set_threads
from hier_envs.datasets import load_dataset
set_threads(2)
base = freeze(load_base_model("runs/grid_eps0_24k/base_model/model.pt"))
print(train_metacontroller(METACONTROLLER_PRESETS["default"], base, load_dataset("runs/grid_eps0_24k/data_Dstar.npz"),
                           "runs/eps0_24k_mc", progress=False), flush=True)
PY
THREADS=2 BASE_MODEL=runs/grid_eps0_24k/base_model/model.pt python results/internal_rl_grid_dev/irl_dev.py runs/eps0_24k_mc/metacontroller.pt runs/eps0_24k_irl_s0 0 20480
echo irl done
