"""Dev: are the ant probes at chance because the probe underfits (unstandardised features, under
one epoch of Adam)? Collects the residuals of 400 D* episodes (100 held out) and fits, per layer,
a linear softmax probe to convergence (L-BFGS, 200 iterations, L2 1e-4) on raw and on
standardised features.

usage: python results/ant_obs_loss_scale/probe_check_dev.py MODEL_PT DSTAR_NPZ
"""
import sys, numpy as np, torch, torch.nn.functional as F
torch.set_num_threads(1)
from agents.pretrain import load_base_model
from agents.probes import collect_residuals
from hier_envs.datasets import load_dataset
model = load_base_model(sys.argv[1]); model.eval()
data = load_dataset(sys.argv[2])
rng = np.random.default_rng(0); idx = np.sort(rng.choice(data.n_episodes, size=min(400, data.n_episodes), replace=False))
res, sub, ep = collect_residuals(model, data, idx)
is_train = ep >= 100
print("steps", res.shape, "label counts", np.bincount(sub.numpy()))
for layer in (0, 2, 4, 6, 8):
    x = res[layer]; mu, sd = x[is_train].mean(0), x[is_train].std(0) + 1e-6
    for name, feats in (("raw", x), ("std", (x - mu) / sd)):
        w = torch.zeros(x.shape[1], 4, requires_grad=True); b = torch.zeros(4, requires_grad=True)
        opt = torch.optim.LBFGS([w, b], max_iter=200, line_search_fn="strong_wolfe")
        xt, yt = feats[is_train], sub[is_train]
        def closure():
            opt.zero_grad(); loss = F.cross_entropy(xt @ w + b, yt) + 1e-4 * w.square().sum(); loss.backward(); return loss
        opt.step(closure)
        with torch.no_grad():
            acc = lambda m: float(((feats[m] @ w + b).argmax(-1) == sub[m]).float().mean())
            print(layer, name, "train", round(acc(is_train), 3), "val", round(acc(~is_train), 3), "scale", float(x.std()))
