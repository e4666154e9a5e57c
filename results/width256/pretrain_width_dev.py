"""Dev script (session 26, not product code): the study's `default` grid pretraining with the
`paper` preset's width (256, MLP 512; depth 6 and 4 heads as both presets) but everything else
`default` (egocentric input embedding, batch 128, lr 1e-3, bfloat16 autocast as session 25).

Question (issue #3): session 25 found the width-128 ceiling (controllers fitted on `HierGrid-v0`
itself) flat near 0.43 from 12,000 to 24,000 steps, and left the paper's width untested. At an
equal number of steps, does width 256 raise the ceiling or the D*-fitted controllers?
Data: the study's `default` D and D* (`ensure_grid_datasets`, as sessions 20-25).

usage: python results/width256/pretrain_width_dev.py RUN_DIR [STEPS=6000] [WIDTH=256]
"""
import dataclasses, sys
from pathlib import Path

from agents.base_model_study import STUDY_PRESETS, ensure_grid_datasets, with_data_epsilon
from agents.pretrain import pretrain

run_dir = Path(sys.argv[1])
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 6000
width = int(sys.argv[3]) if len(sys.argv) > 3 else 256
study = STUDY_PRESETS["default"]
study = with_data_epsilon(study, 0.1)  # D as the preset had it before session 33
model = dataclasses.replace(study.pretrain.model, width=width, mlp_hidden=2 * width)
snapshots = tuple(s for s in (1000, 2000, 4000, 6000, 12000) if s <= steps)
config = dataclasses.replace(study.pretrain, model=model, train_steps=steps, snapshot_steps=snapshots,
                             precision="bfloat16")
data_d, _ = ensure_grid_datasets(study.data, run_dir, progress=False)
print(pretrain(config, data_d, run_dir / "base_model", progress=False), flush=True)
