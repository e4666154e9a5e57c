"""Dev: is the ant's current target colour in its recent observation history at all? A fixed,
non-learned decoder on D*: the colour whose relative position (world frame, from the observation)
best aligns with the ant's displacement over the last K steps. If this reads the target well
while linear probes of the residual stream sit at chance, the history carries the subgoal and
the base model does not represent it linearly.

usage: python results/ant_obs_loss_scale/heading_decode_dev.py DSTAR_NPZ
"""
import sys

import numpy as np

from hier_envs.datasets import load_dataset

data = load_dataset(sys.argv[1])
sub = data.subgoals
print("episodes", data.n_episodes, "steps", data.n_steps, "obs", data.observations.shape, "subgoals", sub.shape)
episodes = [data.episode(e) for e in range(data.n_episodes)]  # observations (T+1, D), subgoals (T,)
for k in (5, 10, 20):
    hits = total = 0
    for episode in episodes:
        o = episode["observations"][:-1]  # (T, 41): o_t for the T action steps
        g = episode["subgoals"]  # (T,)
        xy = o[:, 27:29]
        rel = o[:, 29:37].reshape(-1, 4, 2)
        d = xy[k:] - xy[:-k]  # displacement over the last k steps, at t = k..T-1
        r = rel[k:]
        cos = (r * d[:, None]).sum(-1) / (np.linalg.norm(r, axis=-1) * np.linalg.norm(d, axis=-1)[:, None] + 1e-9)
        valid = g[k:] >= 0
        hits += int((cos.argmax(-1) == g[k:])[valid].sum()); total += int(valid.sum())
    print(f"K={k}: heading decoder accuracy {hits / total:.3f} over {total} steps")
print("majority", np.bincount(sub[sub >= 0]).max() / (sub >= 0).sum())
