"""Dev: are the alpha=0 metacontroller's switches aligned with first-colour-of-pair visits?"""
import sys, numpy as np, torch
from agents.pretrain import load_base_model
from agents.models.controller import freeze
from agents.switching_analysis import collect_betas, boundaries
from agents.train_metacontroller import load_metacontroller
from hier_envs.datasets import load_dataset
torch.set_num_threads(1)
base = freeze(load_base_model(sys.argv[2] if len(sys.argv) > 2 else "runs/grid_base1t/model.pt"))
mc = freeze(load_metacontroller(sys.argv[1], base.config.width))
held = load_dataset("runs/mc_sweep/heldout.npz")
eps = collect_betas(base, mc, held, np.arange(held.n_episodes), base.config.controlled_layer)
off_b, off_v = [], []
for i, (beta, sub) in enumerate(eps):
    obs = held.episode(i)["observations"]  # (T+1, 637)
    planes = obs.reshape(len(obs), 13, 49)
    agent = planes[:, 12].argmax(1)
    on_color = planes[np.arange(len(obs)), 4:12, :][:, :, :]  # (T+1, 8, 49)
    color_at = np.array([np.flatnonzero(on_color[t][:, agent[t]])[0] if on_color[t][:, agent[t]].any() else -1 for t in range(len(obs))])
    moved = np.r_[True, agent[1:] != agent[:-1]]
    visits = np.flatnonzero((color_at >= 0) & moved)[: len(beta)]
    b = boundaries(sub)
    first = np.setdiff1d(visits, b)
    sw = np.flatnonzero(beta[1:] >= 0.5) + 1
    for s in sw:
        if len(b): d = s - b; off_b.append(int(d[np.argmin(np.abs(d))]))
        if len(first): d = s - first; off_v.append(int(d[np.argmin(np.abs(d))]))
for name, o in (("boundary", off_b), ("first-colour visit", off_v)):
    o = np.asarray(o); print(f"offset from nearest {name}: n={len(o)} within±1={np.mean(np.abs(o) <= 1):.3f}",
                            dict(zip(*np.unique(np.clip(o, -8, 8), return_counts=True))))
times, since = [], []
for beta, sub in eps:
    b = np.r_[0, boundaries(sub)]
    for s in np.flatnonzero(beta[1:] >= 0.5) + 1:
        times.append(s); since.append(s - b[b <= s].max())
print("switch times:", dict(zip(*np.unique(np.clip(times, 0, 20), return_counts=True))))
print("steps since segment start:", dict(zip(*np.unique(np.clip(since, 0, 20), return_counts=True))))
print("beta mean by t (first 12):", np.round([np.mean([b[t] for b, _ in eps if len(b) > t]) for t in range(12)], 3))
