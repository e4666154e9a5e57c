#!/bin/bash
# session 32 dev: default metacontroller + internal RL (seed 0) on the 24k ε=0 backbone
cd "$(git rev-parse --show-toplevel)" && . .venv/bin/activate
export SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy MUJOCO_GL=egl
BACKBONE=runs/grid_eps0_24k
BASE_MODEL=$BACKBONE/base_model/model.pt DSTAR=$BACKBONE/data_Dstar.npz \
  python results/metacontroller_kl_schedule/preset_run_dev.py 0 runs/eps0_24k_mc runs/eps0_24k_mc.jsonl || exit 1
THREADS=2 BASE_MODEL=$BACKBONE/base_model/model.pt python results/internal_rl_grid_dev/irl_dev.py runs/eps0_24k_mc/metacontroller.pt runs/eps0_24k_irl_s0 0 20480
echo irl done
