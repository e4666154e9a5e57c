#!/bin/bash
# session 35 dev (longer/NOTE.md): continue the 24,000-step ε = 0 run to 36,000 steps on the same D
# and, to test whether reusing D (each training episode drawn about 16 times by then) explains the
# fall, on a fresh, 4× larger D (seed 5); refit the layer-3 ground-truth controllers, 3 seeds each.
# Run from the repository root. In the session each backbone's fits ran side by side (two, then the
# third beside other work), not one after another as here.
set -x
cd "$(git rev-parse --show-toplevel)" && . .venv/bin/activate
export SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy MUJOCO_GL=egl
fit() { # run_dir tag seed
  THREADS=1 python results/base_model_default_eps0/controller_seeds_dev.py $1 3 $3 runs/eps0_12k_ctrl/controllers_step$2_layer3_seed$3.json > runs/eps0_$2_l3_s$3.log 2>&1
}
continue_run() { # dst_dir D.npz: runs/grid_eps0_24k continued to 36,000 steps in dst_dir on D
  local dst=$1 data=$2
  mkdir -p $dst && ln -f $data $dst/data_D.npz && ln -f runs/grid_eps0/data_Dstar.npz $dst/
  if [ ! -d $dst/base_model ]; then
    python results/controllability_vs_steps/extend_run_dev.py runs/grid_eps0_24k/base_model $dst/base_model 36000 default || exit 1
    # dev: agents.pretrain refuses to resume on other data; record the D this continuation trains on
    python -c "from agents.checkpoints import load_checkpoint as l, save_checkpoint as s; from hier_envs.datasets import load_dataset as d
p = '$dst/base_model/latest.pt'; r = l(p); r['dataset_sha256'] = d('$dst/data_D.npz').sha256; s(p, r)" || exit 1
  fi
  python -m agents.pretrain --preset default --dataset $dst/data_D.npz --run-dir $dst/base_model --train-steps 36000 > $dst.log 2>&1 || exit 1
}
FRESH=runs/grid_eps0_fresh_D_1200k.npz
[ -f $FRESH ] || python -m hier_envs.datasets grid --episodes 1200000 --epsilon 0 --seed 5 --no-progress --out $FRESH || exit 1
continue_run runs/grid_eps0_36k runs/grid_eps0/data_D.npz
for seed in 0 1 2; do fit runs/grid_eps0_36k 36000 $seed; done
continue_run runs/grid_eps0_fresh36k $FRESH
for seed in 0 1 2; do fit runs/grid_eps0_fresh36k fresh36000 $seed; done
echo done
