"""Development record (not product code): the metadata the trainer wrote into the rerun's exported
weights (`export_policy`: config, steps, sha256, training seconds) beside the shipped file's, and
whether any array is equal.

    python results/ant_locomotion_rerun/weights_meta_dev.py runs/ant_locomotion_repro/ant_locomotion.npz results/ant_locomotion_rerun/weights_meta.json
"""

import json
import sys
from pathlib import Path

import mujoco
import numpy as np
import stable_baselines3
import torch

from hier_envs.atomic_io import write_json_atomic
from hier_envs.experts.ant_locomotion import WEIGHTS_PATH

rerun_path, out = Path(sys.argv[1]), Path(sys.argv[2])
rerun, shipped = np.load(rerun_path), np.load(WEIGHTS_PATH)
arrays = [key for key in shipped.files if key != "meta"]
write_json_atomic(out, {
    "rerun": json.loads(str(rerun["meta"])),
    "shipped": json.loads(str(shipped["meta"])),
    "equal_arrays": [key for key in arrays if np.array_equal(rerun[key], shipped[key])],
    "max_abs_difference": {key: float(np.abs(rerun[key] - shipped[key]).max()) for key in arrays},
    "versions": {"mujoco": mujoco.__version__, "torch": torch.__version__, "stable_baselines3": stable_baselines3.__version__},
})
