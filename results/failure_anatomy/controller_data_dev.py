"""Diagnostic (not product code): ground-truth controllers fitted on other expert data (sessions 15-16).

The study fits the layer-L controllers on D* (ε = 0, the 16 pretraining tasks; SPEC A§4.2) and
scores them on the 2 × 2 composition table. This fits the same controllers (same
ControllerConfig: rank 16, 800 steps at batch 128, lr 1e-3, wd 0.03, seed 0) on N episodes of
another source and scores them on the same table (1,000 episodes per pool, seed 10,000), as
`composition_breakdown` does. SOURCE is one of:

- `Dstar`: the first N episodes of the run's D* (or of the file named by DSTAR=): the study's own
  controllers, for a backbone trained outside the study. Session 20.
- `D`: the first N episodes of the run's D (ε = 0.1; non-terminating random moves, so the data
  show states after a mistake). Session 15.
- `all3`: fresh ε = 0 expert episodes, uniform over the 16 pretraining tasks and the 4
  unseen-transition 3-subgoal walks (A-B-C, B-C-D, C-D-A, D-A-B): every subgoal transition is in
  the controllers' data, the length is the pretraining one. Session 16.
- `seen6`: fresh ε = 0 expert episodes on the 128 6-subgoal walks that use only pretraining
  transitions: the post-training length without its unseen transitions. Session 16.
- `post`: fresh ε = 0 expert episodes on the post-training task itself (`HierGrid-v0`). This is
  the ceiling of the frozen backbone under rank-16 linear control at layer L: the controllers
  see exactly the contexts they are scored on (on other layouts). Session 16.

`all3`, `seen6` and `post` data come from generation seed 20,000 (the eval uses env seed 10,000; the
run's D and D* use seeds 1 and 2). Fitting controllers on anything but D* departs from the
paper; these runs only locate where the backbone's controllability ends.
usage: python controller_data_dev.py LAYER SOURCE N_EPISODES OUT.json   (environment: RUN_DIR, THREADS=2,
MODEL=<a snapshot of RUN_DIR's pretraining, e.g. base_model/snapshots/step_4000.pt; default base_model/model.pt>,
SEED=<the controllers' training seed; default the preset's 0> (session 21))
"""
import dataclasses, json, os, sys, time
from pathlib import Path
import numpy as np, torch
from agents.base_model_study import STUDY_PRESETS, composition_breakdown, subgoal_completion_rates
from agents.controllers import save_subgoal_controllers, train_subgoal_controllers
from agents.models.controller import freeze
from agents.pretrain import load_base_model
from hier_envs.datasets import generate_grid_dataset, load_dataset
from hier_envs.tasks import grid_composition_task_sets

DATA_SEED = 20_000
torch.set_num_threads(int(os.environ.get("THREADS", "2")))
layer, source, n_episodes, out = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
run_dir = Path(os.environ.get("RUN_DIR", "runs/grid_default"))
config = STUDY_PRESETS["default"]
if "SEED" in os.environ:
    config = dataclasses.replace(config, controllers=dataclasses.replace(config.controllers, seed=int(os.environ["SEED"])))
model_path = run_dir / os.environ.get("MODEL", "base_model/model.pt")
model = freeze(load_base_model(model_path)); model.eval()
t0 = time.time()
if source == "Dstar":
    dstar_path = Path(os.environ.get("DSTAR", run_dir / "data_Dstar.npz"))
    data = load_dataset(dstar_path).subset(np.arange(n_episodes))
    described = f"first {n_episodes} episodes of {dstar_path}"
elif source == "D":
    data_d = load_dataset(run_dir / "data_D.npz")
    data = data_d.subset(np.arange(n_episodes))
    described = f"first {n_episodes} episodes of data_D.npz"
elif source in ("all3", "seen6", "post"):
    pools = grid_composition_task_sets()
    seen3, unseen3 = pools["seen transitions, 3 subgoals (pretraining tasks)"], pools["unseen transitions, 3 subgoals"]
    chosen = {"all3": seen3 + unseen3, "seen6": pools["seen transitions, 6 subgoals"],
              "post": pools["unseen transitions, 6 subgoals (post-training task)"]}[source]
    tasks = [list(t) for t in chosen]
    data = generate_grid_dataset(n_episodes, 0.0, DATA_SEED, env_kwargs={"tasks": tasks}, progress=False)
    described = f"{n_episodes} fresh expert episodes (eps 0, seed {DATA_SEED}) on {len(tasks)} tasks ({source})"
else:
    raise ValueError(f"SOURCE must be Dstar, D, all3, seen6 or post, got {source!r}")
gen_s = time.time() - t0
ctrl_path = out.with_suffix(".pt")
t0 = time.time()
controllers, losses = train_subgoal_controllers(model, data, layer, config.controllers, progress=False)
save_subgoal_controllers(ctrl_path, controllers, config.controllers, layer, model)
train_s = time.time() - t0
_, pretrain_env_id = config.env_ids  # the pools pass tasks= to the pretraining env, as the study does
t0 = time.time()
cells = composition_breakdown(model, ctrl_path, layer, config, pretrain_env_id)
result = {"run_dir": str(run_dir), "model": str(model_path), "layer": layer, "source": source, "controller_data": described,
          "epsilon": data.metadata["generator"]["epsilon"], "data_steps": int(data.n_steps),
          "controller_config": vars(config.controllers), "generation_s": round(gen_s, 1),
          "train_s": round(train_s, 1), "eval_s": round(time.time() - t0, 1),
          "final_train_loss": float(np.mean(losses[-50:])),
          "pools": {name: {"success_rate": c["success_rate"], "episodes": c["episodes"],
                           "completion": subgoal_completion_rates(c["colors_visited_counts"]),
                           "colors_visited_counts": c["colors_visited_counts"]} for name, c in cells.items()}}
print(json.dumps(result, indent=1))
out.write_text(json.dumps(result, indent=1))
