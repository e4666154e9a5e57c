"""Dev: one from-scratch run of the grid `default` metacontroller preset (as committed, only the
seed set), at the preset's own thread count, to measure its end-to-end wall time on this machine;
run it with nothing else on the cores. Appends one JSON row (seed, steps, wall seconds from the
call to the final checkpoint) to OUT.jsonl; score the run's metacontroller.pt with
score_stops_dev.py. SWITCH_BIAS=b in the environment sets MetacontrollerConfig.switch_bias_init
(default 0) and THREADS=n the thread count (then the wall time is not the preset's); RESUME=1
continues an interrupted run from its latest checkpoint (its row then says "resumed": true and its
wall time covers only the resumed part).
BASE_MODEL and DSTAR name another backbone's model.pt and D* (defaults: the `default` study's
runs/grid_default files).

usage: python preset_run_dev.py SEED RUN_DIR OUT.jsonl"""
import dataclasses, json, os, sys, time
from pathlib import Path
from agents.train_metacontroller import METACONTROLLER_PRESETS, train_metacontroller
from agents.pretrain import load_base_model
from agents.models.controller import freeze
from hier_envs.datasets import load_dataset

seed, run_dir, out = int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
resumed = run_dir.exists()
if resumed and os.environ.get("RESUME") != "1":
    raise SystemExit(f"{run_dir} exists: the wall time is only meaningful for a run from scratch (RESUME=1 resumes it)")
base = freeze(load_base_model(os.environ.get("BASE_MODEL", "runs/grid_default/base_model/model.pt")))
dstar = load_dataset(os.environ.get("DSTAR", "runs/grid_default/data_Dstar.npz"))
preset = METACONTROLLER_PRESETS["default"]
bias = float(os.environ.get("SWITCH_BIAS", preset.metacontroller.switch_bias_init))
cfg = dataclasses.replace(preset, seed=seed, num_threads=int(os.environ.get("THREADS", preset.num_threads)),
                          metacontroller=dataclasses.replace(preset.metacontroller, switch_bias_init=bias))
tic = time.perf_counter()
path = train_metacontroller(cfg, base, dstar, run_dir, progress=False)
wall = time.perf_counter() - tic
row = {"seed": seed, "train_steps": cfg.train_steps, "early_kl_steps": cfg.early_kl_steps,
       "kl_warmup_steps": cfg.kl_warmup_steps, "switch_bias_init": bias, "threads": cfg.num_threads, "checkpoint": str(path), "resumed": resumed,
       "wall_seconds": round(wall, 1), "wall_minutes": round(wall / 60, 2)}
with out.open("a") as f:
    f.write(json.dumps(row) + "\n")
print(json.dumps(row))
