"""Dev: internal RL on HierGrid-v0 with a given metacontroller checkpoint (grid default base model).

usage: python irl_dev.py METACONTROLLER_PT RUN_DIR SEED TOTAL_EPISODES [TASK e.g. 0-1-4-5-2-3]
(environment: THREADS=1; BASE_MODEL, default runs/grid_default/base_model/model.pt; GREEDY=1: the base
model takes its most likely action, InternalRLConfig.greedy_actions; LOG_STD: the policy's initial
log-std, InternalRLConfig.initial_log_std, default 0 = the prior's std 1)"""
import dataclasses, os, sys, time
from pathlib import Path
from agents.internal_rl import INTERNAL_RL_PRESETS, train_internal_rl
from agents.train_metacontroller import load_metacontroller
from agents.pretrain import load_base_model
from agents.models.controller import freeze
from agents.training_utils import set_threads

mc_path, run_dir, seed, total = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
threads = int(os.environ.get("THREADS", "1"))
set_threads(threads)
base = freeze(load_base_model(os.environ.get("BASE_MODEL", "runs/grid_default/base_model/model.pt")))
mc = freeze(load_metacontroller(mc_path, base.config.width)).eval()
kwargs = {"task": [int(c) for c in sys.argv[5].split("-")]} if len(sys.argv) > 5 else {}
cfg = dataclasses.replace(INTERNAL_RL_PRESETS["default"], seed=seed, total_episodes=total, num_threads=threads, env_kwargs=kwargs,
                          greedy_actions=os.environ.get("GREEDY") == "1",
                          initial_log_std=float(os.environ.get("LOG_STD", "0")))
tic = time.perf_counter()
path = train_internal_rl(cfg, base, mc, run_dir, progress=False)
print("done", path, round(time.perf_counter() - tic, 1), "s", flush=True)
