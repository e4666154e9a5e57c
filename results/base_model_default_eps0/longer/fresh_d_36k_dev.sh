#!/bin/bash
# (committed copy of the session-35 driver; run from the repository root. Fits 0 and 1 ran side by side; seed 2 was started beside them by hand.)
# session 35: is the drop from 24k to 36k steps (same D, each training episode drawn about 16 times) overfitting D? Continue the 24k
# backbone to 36k on a fresh, 4x larger D (seed 5) instead; refit the layer-3 controllers.
set -x
cd "$(git rev-parse --show-toplevel)" && . .venv/bin/activate
export SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy MUJOCO_GL=egl
fit() { # run_dir tag layer seed
  THREADS=1 python results/base_model_default_eps0/controller_seeds_dev.py $1 $3 $4 runs/eps0_12k_ctrl/controllers_step$2_layer$3_seed$4.json > runs/eps0_$2_l$3_s$4.log 2>&1
}
date
D=runs/grid_eps0_fresh36k
fit runs/grid_eps0_36k 36000 3 2 &
[ -f $D/data_D.npz ] || python -m hier_envs.datasets grid --episodes 1200000 --epsilon 0 --seed 5 --no-progress --out $D/data_D.npz || exit 1
wait
date
ln -f runs/grid_eps0/data_Dstar.npz $D/
if [ ! -d $D/base_model ]; then
  python results/controllability_vs_steps/extend_run_dev.py runs/grid_eps0_24k/base_model $D/base_model 36000 || exit 1
  python - <<PY || exit 1
from agents.checkpoints import load_checkpoint, save_checkpoint
from hier_envs.datasets import load_dataset
p = "$D/base_model/latest.pt"
r = load_checkpoint(p)
r["config"]["snapshot_steps"] = [1000, 2000, 4000, 6000, 12000]  # past steps only (the preset's list)
r["dataset_sha256"] = load_dataset("$D/data_D.npz").sha256  # dev: continue on the fresh D
save_checkpoint(p, r)
PY
fi
python -m agents.pretrain --preset default --dataset $D/data_D.npz --run-dir $D/base_model --train-steps 36000 > runs/grid_eps0_fresh36k.log 2>&1 || exit 1
date
fit $D fresh36000 3 0 & fit $D fresh36000 3 1 & wait
date
fit $D fresh36000 3 2
date
echo s35 fresh done
