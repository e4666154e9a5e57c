"""Diagnostic (not product code): do ground-truth controllers under-fit at the default 800 x 128?
Caches the frozen lower half's layer-L residuals of D* once, trains controllers through the upper
half only, evaluates at checkpoints on the composition pools."""
import json, sys, time, torch, numpy as np
from pathlib import Path
from agents.pretrain import load_base_model
from agents.controllers import SubgoalControllers, evaluate_subgoal_controllers, controlled_action_nll
from agents.models.controller import freeze
from hier_envs.datasets import load_dataset
from hier_envs.tasks import grid_composition_task_sets
torch.set_num_threads(2)
base_path, layer, out_dir = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
batch_size, total, lr = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
evals = [int(s) for s in sys.argv[7].split(",")]
out_dir.mkdir(parents=True, exist_ok=True)
model = freeze(load_base_model(base_path)); model.eval()
dstar = load_dataset("runs/grid_default/data_Dstar.npz")
heldout = load_dataset("runs/mc_sweep/heldout.npz")
t0 = time.time()
lengths = dstar.episode_lengths; offsets = np.concatenate([[0], np.cumsum(lengths)])
flat = torch.empty(int(lengths.sum()), model.config.width)
from agents.pretrain import batch_tensors
with torch.no_grad():
    for s in range(0, dstar.n_episodes, 256):
        idx = np.arange(s, min(s + 256, dstar.n_episodes))
        b = batch_tensors(dstar, idx)
        r = model.forward_lower(b["observations"], layer)
        m = b["mask"].bool()
        flat[offsets[s]:offsets[idx[-1] + 1]] = r[m]
print(json.dumps({"cache_s": round(time.time() - t0, 1)}), flush=True)
torch.manual_seed(0)
ctrl = SubgoalControllers(model.config.width, 4, 16)
opt = torch.optim.AdamW(ctrl.parameters(), lr=lr, weight_decay=0.03)
rng = np.random.default_rng([0, 23])
pools = grid_composition_task_sets()
losses = []; t1 = time.time()
for step in range(1, total + 1):
    idx = rng.integers(dstar.n_episodes, size=batch_size)
    b = batch_tensors(dstar, idx)
    T = b["mask"].shape[1]
    pos = offsets[idx][:, None] + np.arange(T)[None, :]
    valid = b["mask"].bool()
    pos = torch.from_numpy(np.where(valid.numpy(), pos, 0))
    residual = flat[pos] * valid[..., None]
    out = model.forward_upper(ctrl(residual, b["subgoals"].clamp(min=0)), layer)
    loss = model.loss(out, b, 0.0)["action_nll"]
    opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    losses.append(float(loss.detach()))
    if step in evals:
        train_s = time.time() - t1
        row = {"step": step, "batch": batch_size, "lr": lr, "train_s": round(train_s, 1),
               "loss_last100": float(np.mean(losses[-100:])),
               "heldout_nll": controlled_action_nll(model, ctrl, heldout, layer)}
        for name, tasks in pools.items():
            st = evaluate_subgoal_controllers(model, ctrl, layer, env_id="HierGrid-Pretrain-v0", n_episodes=500,
                                              env_kwargs={"tasks": tasks})
            row[name] = {"success": st.success_rate, "colors": float(st.colors_visited.mean()),
                         "hist": np.bincount(st.colors_visited, minlength=13).tolist()}
        torch.save(ctrl.state_dict(), out_dir / f"ctrl_{batch_size}_{step}.pt")
        print(json.dumps(row), flush=True)
        t1 = time.time() - train_s  # exclude eval time
