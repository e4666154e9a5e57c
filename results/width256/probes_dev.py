"""Dev script (session 26, not product code): the study's linear subgoal probes (SPEC A§4.1, the
`default` ProbeConfig on D*) on snapshots of the width-256 backbone, as the study runs them.

usage: python results/width256/probes_dev.py RUN_DIR OUT.json STEP [STEP ...]
"""
import json, sys, time
from pathlib import Path

import torch

from agents.base_model_study import STUDY_PRESETS, ensure_grid_datasets, with_data_epsilon
from agents.models.controller import freeze
from agents.pretrain import load_base_model
from agents.probes import probe_model

torch.set_num_threads(2)
run_dir, out, steps = Path(sys.argv[1]), Path(sys.argv[2]), [int(s) for s in sys.argv[3:]]
study = STUDY_PRESETS["default"]
study = with_data_epsilon(study, 0.1)  # D as the preset had it before session 33
_, dstar = ensure_grid_datasets(study.data, run_dir, progress=False)
result = {}
for step in steps:
    t0 = time.time()
    probes = probe_model(freeze(load_base_model(run_dir / "base_model" / "snapshots" / f"step_{step}.pt")), dstar, study.probes)
    result[str(step)] = {key: [round(float(v), 4) for v in value] for key, value in probes.items()} | {"seconds": round(time.time() - t0, 1)}
    print(step, result[str(step)], flush=True)
out.write_text(json.dumps(result, indent=1))
