"""Development check (not product code): does the grid `default` pretraining reproduce the
committed study's logged metrics on this machine? Generates D as `agents.base_model_study
--preset default` does (300,000 episodes, ε = 0.1, seed 1), pretrains the `default` preset for the
first STEPS steps (2 threads) and compares every logged metric row with
`results/base_model_default_before_session33/results.json` (written on an earlier machine). D is kept in
runs/fresh_D.npz for later runs (its sha256 is recorded); environment variables such as
MKL_CBWR are recorded with the result.

    python results/fresh_machine_check/pretrain_prefix_dev.py 500 runs/fresh_pretrain results/fresh_machine_check/pretrain_prefix.json
    MKL_CBWR=AVX2 python results/fresh_machine_check/pretrain_prefix_dev.py 250 runs/fresh_pretrain_avx2 results/fresh_machine_check/pretrain_prefix_mkl_avx2.json
"""

import json
import os
import sys
from pathlib import Path

import torch

from agents.base_model_study import STUDY_PRESETS, with_data_epsilon, with_pretrain_steps
from agents.pretrain import pretrain
from agents.training_utils import CsvLog
from hier_envs.atomic_io import write_json_atomic
from hier_envs.datasets import generate_grid_dataset, load_dataset, save_dataset

steps, run_dir, out = int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
committed = json.loads(Path("results/base_model_default_before_session33/results.json").read_text())
# the preset as that run had it (session 33 moved `default` to ε = 0 and 12,000 steps; with the
# constant learning rate the first STEPS steps do not depend on the run's length)
study = with_pretrain_steps(with_data_epsilon(STUDY_PRESETS["default"], 0.1), 6000)
data = study.data
cached = Path("runs/fresh_D.npz")
if cached.exists():
    dataset = load_dataset(cached)
else:
    dataset = generate_grid_dataset(data.d_episodes, data.d_epsilon, data.seed, progress=False)
    save_dataset(dataset, cached)
pretrain(study.pretrain, dataset, run_dir, stop_after=steps, progress=False)
rows = CsvLog(run_dir / "metrics.csv", ["step"]).read()
committed_rows = {row["step"]: row for row in committed["pretraining"]["metrics"]}
compared = []
for row in rows:
    old = committed_rows[str(row["step"])]
    keys = [key for key in old if key not in ("step", "elapsed_s")]
    compared.append({
        "step": int(row["step"]),
        "equal_as_logged": {key: str(row[key]) == old[key] for key in keys},
        "this_machine": {key: str(row[key]) for key in keys},
        "committed": {key: old[key] for key in keys},
        "elapsed_s": {"this_machine": float(row["elapsed_s"]), "committed": float(old["elapsed_s"])},
    })
# fields added to PretrainConfig after the committed run are absent there (their defaults reproduce it)
current = json.loads(json.dumps(study.pretrain.to_dict()))
current["model"].pop("model_type")
config_differences = [key for key, value in committed["config"]["pretrain"].items() if current.get(key) != value]
write_json_atomic(out, {"dataset_sha256": dataset.sha256, "dataset_steps": dataset.n_steps,
                        "config_fields_differing": config_differences,
                        "rows": compared, "torch": torch.__version__,
                        "environment": {key: os.environ[key] for key in ("MKL_CBWR", "ATEN_CPU_CAPABILITY") if key in os.environ}})
print(json.dumps(compared, indent=1))
