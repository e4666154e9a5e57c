"""Dev: do the metacontroller's codes name the subgoal, if not by their mean? A linear softmax probe
from the integrated code z_t (encoder means, steps at least 2 from a boundary) to the subgoal id,
fitted on 200 held-out D* episodes and scored on the other 100; the same probe on the residual at
the controlled layer for comparison, and the majority class. Also probes for the heading: the
dominant direction (up / right / down / left) of the expert's remaining displacement within the
current subgoal segment, summed from its actions (wall bumps ignored).

usage: python code_probe_dev.py METACONTROLLER_PT OUT.json
(environment: BASE_MODEL, default runs/grid_default/base_model/model.pt; HELDOUT, default
runs/mc_sweep/heldout.npz)"""
import json, os, sys
from pathlib import Path
import numpy as np, torch
from agents.train_metacontroller import load_metacontroller
from agents.pretrain import load_base_model, batch_tensors
from agents.models.controller import freeze
from agents.training_utils import set_threads
from hier_envs.datasets import load_dataset

set_threads(1)
mc_path, out = sys.argv[1], Path(sys.argv[2])
base = freeze(load_base_model(os.environ.get("BASE_MODEL", "runs/grid_default/base_model/model.pt"))); layer = base.config.controlled_layer
mc = freeze(load_metacontroller(mc_path, base.config.width)).eval()
held = load_dataset(os.environ.get("HELDOUT", "runs/mc_sweep/heldout.npz"))
b = batch_tensors(held, np.arange(held.n_episodes))
with torch.no_grad():
    residual = base.forward_lower(b["observations"], layer)
    o = mc(residual, b["mask"], sample=False)
sub, mask = b["subgoals"], b["mask"].bool()
settled = mask.clone()
edge = torch.zeros_like(mask); edge[:, 1:] = (sub[:, 1:] != sub[:, :-1]) & mask[:, 1:]
for shift in (-2, -1, 0, 1, 2):
    settled &= ~torch.roll(edge, shift, 1)
train = torch.zeros_like(settled); train[:200] = True


def probe(features, labels=sub):
    x_tr, y_tr = features[settled & train], labels[settled & train]
    x_te, y_te = features[settled & ~train], labels[settled & ~train]
    mean, std = x_tr.mean(0), x_tr.std(0) + 1e-6
    x_tr, x_te = (x_tr - mean) / std, (x_te - mean) / std
    torch.manual_seed(0)
    linear = torch.nn.Linear(x_tr.shape[1], 4)
    opt = torch.optim.LBFGS(linear.parameters(), max_iter=500)
    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(linear(x_tr), y_tr) + 1e-3 * linear.weight.square().sum()
        loss.backward()
        return loss
    opt.step(closure)
    with torch.no_grad():
        return float((linear(x_te).argmax(1) == y_te).float().mean()), int(len(y_te))


# heading: remaining displacement to the end of the current segment (row, col), from the actions
delta = torch.tensor([[-1, 0], [0, 1], [1, 0], [0, -1]])[b["actions"].clamp(min=0)] * mask[..., None]  # (B, T, 2)
segment = torch.cumsum(edge.long(), 1)  # segment index per step
remaining = torch.zeros_like(delta)
for t in range(delta.shape[1] - 1, -1, -1):  # suffix sums that restart at each segment end
    carry = remaining[:, t + 1] if t + 1 < delta.shape[1] else torch.zeros_like(delta[:, 0])
    same = (segment[:, t + 1] == segment[:, t]) if t + 1 < delta.shape[1] else torch.zeros_like(mask[:, 0])
    remaining[:, t] = delta[:, t] + carry * same[:, None]
vertical = remaining[..., 0].abs() >= remaining[..., 1].abs()
heading = torch.where(vertical, torch.where(remaining[..., 0] < 0, 0, 2), torch.where(remaining[..., 1] > 0, 1, 3))


def majority(labels):
    y = labels[settled & ~train]
    return round(float(torch.bincount(y).max() / len(y)), 4)


code_acc, n_test = probe(o.z)
row = {"checkpoint": mc_path, "test_steps": n_test,
       "subgoal": {"code_probe_accuracy": round(code_acc, 4), "residual_probe_accuracy": round(probe(residual)[0], 4),
                   "majority_class": majority(sub)},
       "heading": {"code_probe_accuracy": round(probe(o.z, heading)[0], 4),
                   "residual_probe_accuracy": round(probe(residual, heading)[0], 4), "majority_class": majority(heading)}}
out.write_text(json.dumps(row, indent=1))
print(json.dumps(row))
