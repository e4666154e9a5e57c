"""Dev: does switching pay on this backbone? Held-out D* action NLL of ground-truth controllers
switched per subgoal (4 codes) vs held constant per task (one code per distinct task, never switched)."""
import dataclasses, json, sys, time
import numpy as np, torch
from agents.pretrain import load_base_model, batch_tensors
from agents.models.controller import freeze
from agents.controllers import CONTROLLER_PRESETS, train_subgoal_controllers
from hier_envs.datasets import load_dataset
torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
base = freeze(load_base_model(sys.argv[1])); layer = base.config.controlled_layer
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 800
dstar = load_dataset("runs/grid_default/data_Dstar.npz"); held = load_dataset("runs/mc_sweep/heldout.npz")
tasks = np.unique(np.concatenate([dstar.episode_tasks, held.episode_tasks]), axis=0)
def task_labels(ds):
    ids = np.array([np.flatnonzero((tasks == t).all(1))[0] for t in ds.episode_tasks])
    return dataclasses.replace(ds, subgoals=np.repeat(ids, ds.episode_lengths))
def heldout_nll(ctrl, ds):
    tot, n = 0.0, 0
    with torch.no_grad():
        for s in range(0, ds.n_episodes, 100):
            b = batch_tensors(ds, np.arange(s, min(s + 100, ds.n_episodes)))
            out = base.forward_upper(ctrl(base.forward_lower(b["observations"], layer), b["subgoals"].clamp(min=0)), layer)
            m = b["mask"].sum().item(); tot += base.loss(out, b, 0.0)["action_nll"].item() * m; n += m
    return tot / n
res = {"base_model": sys.argv[1], "steps": steps, "n_tasks": len(tasks)}
for name, train, test, k in (("per_subgoal", dstar, held, 4), ("per_task", task_labels(dstar), task_labels(held), len(tasks))):
    t = time.time()
    cfg = dataclasses.replace(CONTROLLER_PRESETS["default"], n_subgoals=k, train_steps=steps)
    ctrl, losses = train_subgoal_controllers(base, train, layer, cfg, progress=False)
    res[name] = {"heldout_action_nll": heldout_nll(ctrl, test), "final_train_loss": float(np.mean(losses[-50:])), "seconds": round(time.time() - t)}
    print(json.dumps(res), flush=True)
