"""Dev: train the grid `default` metacontroller from scratch with the package's early-α option
(MetacontrollerTrainConfig.early_kl_weight / early_kl_steps) and keep a copy of the checkpoint at
each stop, for scoring with score_stops_dev.py.

usage: python train_kl_schedule_dev.py RUN_DIR ALPHA EARLY_ALPHA EARLY_STEPS SCALE SEED STOPS
  base model runs/grid_default/base_model/model.pt (the `default` study's 6,000-step pretraining),
  D* runs/grid_default/data_Dstar.npz. Re-running resumes from RUN_DIR/latest.pt.
THREADS (environment, default 2) sets torch's threads; SWITCH_BIAS_INIT (default 0.0, the
preset's) the switching unit's initial output bias (MetacontrollerConfig.switch_bias_init)."""
import dataclasses, os, shutil, sys
from pathlib import Path
from agents.train_metacontroller import METACONTROLLER_PRESETS, train_metacontroller
from agents.pretrain import load_base_model
from agents.models.controller import freeze
from agents.training_utils import set_threads
from hier_envs.datasets import load_dataset

run_dir, alpha, early_alpha, early_steps = Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
scale, seed, stops = float(sys.argv[5]), int(sys.argv[6]), [int(s) for s in sys.argv[7].split(",")]
threads = int(os.environ.get("THREADS", "2"))
switch_bias_init = float(os.environ.get("SWITCH_BIAS_INIT", "0.0"))
set_threads(threads)
base = freeze(load_base_model("runs/grid_default/base_model/model.pt"))
dstar = load_dataset("runs/grid_default/data_Dstar.npz")
preset = METACONTROLLER_PRESETS["default"]
cfg = dataclasses.replace(preset, train_steps=max(stops), checkpoint_every=250, log_every=50, seed=seed,
                          switch_learning_rate_scale=scale, early_kl_weight=early_alpha, early_kl_steps=early_steps,
                          num_threads=threads, metacontroller=dataclasses.replace(preset.metacontroller, kl_weight=alpha,
                                                                     switch_bias_init=switch_bias_init))
for stop in stops:
    path = train_metacontroller(cfg, base, dstar, run_dir, stop_after=stop, progress=False)
    copy = run_dir / f"step_{stop}.pt"
    if not copy.exists():
        shutil.copyfile(path, copy.with_suffix(".tmp"))
        copy.with_suffix(".tmp").replace(copy)
        print("stop", stop, "->", copy, flush=True)
