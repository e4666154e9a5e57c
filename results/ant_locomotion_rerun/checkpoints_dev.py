"""Development check (not product code): the ant expert with each checkpoint of a rerun of the
`default` locomotion training (`python -m hier_envs.experts.train_ant_locomotion --run-dir
runs/ant_locomotion_repro --weights runs/ant_locomotion_repro/ant_locomotion.npz`), 100 episodes
per env, evaluation seed 1, mean actions. Each checkpoint is exported with the trainer's own
`export_policy` into RUN_DIR/exported/ and scored with `evaluate_ant_expert`.

    python results/ant_locomotion_rerun/checkpoints_dev.py runs/ant_locomotion_repro results/ant_locomotion_rerun/checkpoints_seed1.json
"""

import json
import sys
from pathlib import Path

from hier_envs.atomic_io import write_json_atomic
from hier_envs.experts.ant_expert import evaluate_ant_expert
from hier_envs.experts.ant_locomotion import LocomotionPolicy
from hier_envs.experts.train_ant_locomotion import PRESETS, _load_checkpoint, _make_vec_env, export_policy

run_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
config = PRESETS["default"]
rows = []
for model_path in sorted((run_dir / "checkpoints").glob("ppo_*_steps.zip"), key=lambda p: int(p.stem.split("_")[1])):
    steps = int(model_path.stem.split("_")[1])
    normaliser = run_dir / "checkpoints" / f"ppo_vecnormalize_{steps}_steps.pkl"
    model, venv = _load_checkpoint((model_path, normaliser), _make_vec_env(config))
    weights = run_dir / "exported" / f"ant_locomotion_{steps}.npz"
    export_policy(model, venv, weights, config)
    row = {"steps": steps, "weights": str(weights)}
    for env_id in ("HierAnt-Pretrain-v0", "HierAnt-v0"):
        result = evaluate_ant_expert(env_id, 100, seed=1, policy=LocomotionPolicy.load(weights))
        row[env_id] = {"success_rate": result["success_rate"], "outcomes": result["outcomes"]}
    print(json.dumps(row))
    rows.append(row)
write_json_atomic(out, {"run_dir": str(run_dir), "episodes_per_env": 100, "seed": 1, "checkpoints": rows})
