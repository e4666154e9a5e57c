"""Dev script (session 25, not product code): the study's `default` grid pretraining under
`precision="bfloat16"` (new this session), run to STEPS steps with snapshots along the way.

Question: with bfloat16 autocast (about 1.5x the float32 step rate on this AVX512-BF16 CPU), a
24,000-step backbone fits in one session. Does the ground-truth controllers' success on
`HierGrid-v0` (issue #3) move between 12,000 and 24,000 steps, where session 20 extrapolated the
ceiling past 0.5? Data: the study's `default` D and D* (`ensure_grid_datasets`, as sessions 20-21).

usage: python results/bf16_pretraining/pretrain_bf16_dev.py RUN_DIR [STEPS=24000] [PRECISION=bfloat16]
"""
import dataclasses, sys
from pathlib import Path

from agents.base_model_study import STUDY_PRESETS, ensure_grid_datasets, with_data_epsilon
from agents.pretrain import pretrain

run_dir = Path(sys.argv[1])
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 24_000
precision = sys.argv[3] if len(sys.argv) > 3 else "bfloat16"
study = STUDY_PRESETS["default"]
study = with_data_epsilon(study, 0.1)  # D as the preset had it before session 33
snapshots = tuple(s for s in (2000, 4000, 6000, 12000, 18000, 24000) if s <= steps)
config = dataclasses.replace(study.pretrain, train_steps=steps, snapshot_steps=snapshots, precision=precision)
data_d, _ = ensure_grid_datasets(study.data, run_dir, progress=False)
print(pretrain(config, data_d, run_dir / "base_model", progress=False), flush=True)
