"""Dev: wall time of the grid `default` metacontroller preset on this machine — 300 training steps
at the preset's own thread count from a fresh run directory, nothing else running. Prints one JSON
line (``preset_timing_2threads.json`` is that line); the last metrics rows carry the elapsed seconds.

usage: python time_preset_dev.py > preset_timing_2threads.json"""
import json, shutil, time
from pathlib import Path
t0 = time.perf_counter()
from agents.train_metacontroller import METACONTROLLER_PRESETS, train_metacontroller
from agents.pretrain import load_base_model
from agents.models.controller import freeze
from hier_envs.datasets import load_dataset
base = freeze(load_base_model("runs/grid_default/base_model/model.pt"))
dstar = load_dataset("runs/grid_default/data_Dstar.npz")
cfg = METACONTROLLER_PRESETS["default"]
d = Path("/tmp/mc_time"); shutil.rmtree(d, ignore_errors=True)
t1 = time.perf_counter()
train_metacontroller(cfg, base, dstar, d, stop_after=300, progress=False)
t2 = time.perf_counter()
rows = (d / "metrics.csv").read_text().splitlines()
print(json.dumps({"threads": cfg.num_threads, "load_s": round(t1 - t0, 1), "train_300_s": round(t2 - t1, 1), "rows": rows[-3:]}))
