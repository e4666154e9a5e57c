#!/bin/bash
# session 34 dev (results/tie_breaking/NOTE.md): the benchmark pipeline's metacontroller recipe
# (pipeline_methods: METACONTROLLER_PRESETS["default"] at a final α) on the session-33 backbone (alpha: a study run dir's), then scored.
#   run_dev.sh ties    D* from the first-optimal-action expert, α = 0.1, 1 thread (run as runs/s34_ties.sh)
#   run_dev.sh alpha1  the package's D*, α = 1.0, 2 threads (run as runs/s34_alpha1.sh)
#   run_dev.sh alpha A STUDY_RUN   session 36: the package's D* of the base-model study run dir STUDY_RUN
#                      (its backbone too), final α = A, 2 threads, uniform held-out set
cd /work/main && . .venv/bin/activate && export OMP_WAIT_POLICY=PASSIVE
BACKBONE=runs/grid_default_s33
case "$1" in
  ties) ALPHA=0.1 THREADS=1 RUN=runs/ties_s34/mc DSTAR=runs/ties_s34/data_Dstar_first_optimal.npz
        HELD=runs/ties_s34/heldout_first_optimal.npz OUT=colour_codes_first_optimal.json SEG=colour
        python results/tie_breaking/make_data_dev.py runs/ties_s34 || exit 1 ;;
  alpha1) ALPHA=1.0 THREADS=2 RUN=runs/alpha1_s34/mc DSTAR=runs/grid_default_s33/data_Dstar.npz
          HELD=runs/mc_sweep/heldout.npz OUT=colour_codes_uniform_ties_alpha1.json SEG=subgoal ;;
  alpha) [ -n "$2" ] && [ -d "$3" ] || { echo "usage: run_dev.sh alpha A STUDY_RUN" >&2; exit 2; }
         BACKBONE=$3 ALPHA=$2 THREADS=2 RUN=runs/alpha$2_$(basename "$3")/mc DSTAR=$3/data_Dstar.npz
         HELD=runs/mc_sweep/heldout.npz OUT=colour_codes_$(basename "$3")_alpha$2.json SEG=subgoal ;;  # score_stops_dev.py writes HELD when missing
  *) echo "usage: run_dev.sh ties|alpha1|alpha A STUDY_RUN" >&2; exit 2 ;;
esac
export ALPHA THREADS RUN DSTAR BACKBONE
python - <<'PY' || exit 1
import dataclasses, os
from agents.train_metacontroller import METACONTROLLER_PRESETS, train_metacontroller
from agents.pretrain import load_base_model
from agents.models.controller import freeze
from agents.training_utils import set_threads
from hier_envs.datasets import load_dataset
threads = int(os.environ["THREADS"])
config = METACONTROLLER_PRESETS["default"]
config = dataclasses.replace(config, metacontroller=dataclasses.replace(config.metacontroller, kl_weight=float(os.environ["ALPHA"])),
                             num_threads=threads)
set_threads(threads)
base = freeze(load_base_model(os.environ["BACKBONE"] + "/base_model/model.pt"))
print(train_metacontroller(config, base, load_dataset(os.environ["DSTAR"]), os.environ["RUN"], progress=False), flush=True)
PY
export BASE_MODEL=$BACKBONE/base_model/model.pt HELDOUT=$HELD
if [ "$1" = ties ]; then
  python results/metacontroller_kl_schedule/score_stops_dev.py results/tie_breaking/switching.jsonl $RUN/metacontroller.pt
  python results/internal_rl_grid_dev/code_probe_dev.py $RUN/metacontroller.pt results/tie_breaking/code_probe.json
elif [ "$1" = alpha1 ]; then
  python results/metacontroller_kl_schedule/score_stops_dev.py results/tie_breaking/alpha1_switching.jsonl $RUN/metacontroller.pt
else
  python results/metacontroller_kl_schedule/score_stops_dev.py results/tie_breaking/switching_$(basename "$BACKBONE")_alpha$ALPHA.jsonl $RUN/metacontroller.pt
fi
SEGMENTS=$SEG python results/tie_breaking/colour_codes_dev.py $RUN/metacontroller.pt results/tie_breaking/$OUT 500 0-1-4-5-2-3 0-1-2-3-4-5-6-7-0-1-2-3
