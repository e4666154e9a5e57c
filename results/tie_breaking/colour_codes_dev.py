"""Dev (session 34): does a metacontroller switch at colour visits and name the next colour?

For one metacontroller checkpoint, on held-out D*-style episodes (HELDOUT):
- switching scores (agents.switching_analysis, ±1, β ≥ 0.5) against the *colour-visit* boundaries
  (each step whose next colour target differs from the previous step's), not the subgoal ones;
- linear probes (softmax, L-BFGS, fitted on the first 200 episodes, scored on the rest, steps at
  least 2 from a colour boundary) from the integrated code z_t and from the controlled layer's
  residual to: the next colour (8 classes), the subgoal pair (4), the place of that colour in its
  pair (2); with the majority class of each;
- an oracle: the mean code of each colour (same steps), played at decision i for the i-th colour of
  a task in the internal-RL environment (β decides when a decision is asked), EPISODES episodes per task;
- a code swap, teacher-forced: every segment (between SEGMENTS boundaries: `subgoal` pairs, the
  default, or `colour` visits) gets the code another episode held in a segment that shares its
  target, its heading (dominant direction of the segment's whole displacement), both, or neither
  (a random segment), and the held-out action NLL of the steps at least 2 after the segment's start
  is compared with the own codes' (as integrated, and the segment's code at its 3rd step held over
  the whole segment, as the donors' are), the prior mean z = 0 and no controller. If the codes name the
  target, a same-target donor should do about as well as the own code; if they name a direction, a
  same-heading donor should.

usage: python colour_codes_dev.py METACONTROLLER_PT OUT.json EPISODES TASK...
(environment: BASE_MODEL, HELDOUT as in code_probe_dev.py; SEGMENTS = subgoal | colour)
"""
import json, os, sys
from pathlib import Path
import numpy as np, torch
from agents.internal_rl import InternalRLEnvironment
from agents.train_metacontroller import load_metacontroller
from agents.pretrain import load_base_model, batch_tensors
from agents.models.controller import freeze
from agents.switching_analysis import switching_scores
from agents.training_utils import set_threads
from hier_envs.atomic_io import write_json_atomic
from hier_envs.datasets import load_dataset

set_threads(1)
mc_path, out, episodes = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
tasks = [[int(c) for c in t.split("-")] for t in sys.argv[4:]]
segments_by = os.environ.get("SEGMENTS", "subgoal")
base = freeze(load_base_model(os.environ["BASE_MODEL"])); layer = base.config.controlled_layer
mc = freeze(load_metacontroller(mc_path, base.config.width)).eval()
held = load_dataset(os.environ["HELDOUT"])
b = batch_tensors(held, np.arange(held.n_episodes))
with torch.no_grad():
    residual = base.forward_lower(b["observations"], layer)
    o = mc(residual, b["mask"], sample=False)
mask = b["mask"].bool()
grid = held.metadata["env_config"]  # observation planes: walls, colours, agent (hier_envs.grid)
cells, n_colors, n_walls = grid["grid_size"] ** 2, grid["n_colors"], grid["n_walls"]
color_cell = b["observations"][:, 0, n_walls * cells:(n_walls + n_colors) * cells].reshape(-1, n_colors, cells).argmax(-1)
agent_after = b["next_observations"][..., (n_walls + n_colors) * cells:].argmax(-1)  # (B, T) cell after each action
entered = (agent_after[..., None] == color_cell[:, None, :]) & mask[..., None]  # (B, T, 8)
visited = torch.where(entered.any(-1), entered.float().argmax(-1), torch.full_like(agent_after, -1))
next_color = torch.full_like(visited, -1)
carry = torch.full_like(visited[:, 0], -1)
for t in range(visited.shape[1] - 1, -1, -1):  # the first colour entered at or after step t
    carry = torch.where(visited[:, t] >= 0, visited[:, t], carry)
    next_color[:, t] = carry
assert bool((next_color[mask] // 2 == b["subgoals"][mask]).all()), "colour labels disagree with the subgoal labels"
lengths = mask.sum(1)
beta = o.beta.numpy()
scores = switching_scores([(beta[i, :n], next_color[i, :n].numpy()) for i, n in enumerate(lengths.tolist())])
edge = torch.zeros_like(mask); edge[:, 1:] = (next_color[:, 1:] != next_color[:, :-1]) & mask[:, 1:]
settled = mask.clone()
for shift in (-2, -1, 0, 1, 2):
    settled &= ~torch.roll(edge, shift, 1)
train = torch.zeros_like(settled); train[:200] = True


def probe(x, y, classes):
    fit, test = settled & train, settled & ~train
    mean, std = x[fit].mean(0), x[fit].std(0) + 1e-6
    torch.manual_seed(0)
    linear = torch.nn.Linear(x.shape[-1], classes)
    opt = torch.optim.LBFGS(linear.parameters(), max_iter=500)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(linear((x[fit] - mean) / std), y[fit]) + 1e-3 * linear.weight.square().sum()
        loss.backward()
        return loss
    opt.step(closure)
    with torch.no_grad():
        return round(float((linear((x[test] - mean) / std).argmax(1) == y[test]).float().mean()), 4)


probes = {}
for name, labels, classes in (("next_colour", next_color, n_colors), ("subgoal", next_color // 2, n_colors // 2),
                              ("place_in_pair", next_color % 2, 2)):
    tested = labels[settled & ~train]
    probes[name] = {"code": probe(o.z, labels, classes), "residual": probe(residual, labels, classes),
                    "majority": round(float(torch.bincount(tested, minlength=classes).max()) / len(tested), 4)}
codes = torch.stack([o.z[settled & (next_color == k)].mean(0) for k in range(n_colors)])


class ColourCodes:
    """Duck-typed CodePolicy: decision i of an episode gets the mean code of the task's i-th colour."""

    def __init__(self, colours):
        self.colours = torch.tensor(colours)
        self.log_std = torch.full((codes.shape[1],), -20.0)

    def initial_state(self, n):
        return torch.zeros(n, 1)

    def step(self, residual, state):
        return state + 1, codes[self.colours[state[:, 0].long().clamp(max=len(self.colours) - 1)]]

    def log_prob(self, mean, z):
        return torch.zeros(mean.shape[0])


rows = []
for task in tasks:
    environment = InternalRLEnvironment(base, mc, "HierGrid-v0", episodes, 0.5, env_kwargs={"task": task})
    batch = environment.collect(ColourCodes(task), seed=123, generator=torch.Generator().manual_seed(0))
    rows.append({"task": "-".join(map(str, task)), "episodes": episodes, "success_rate": float(batch.returns.mean()),
                 "decisions_per_episode": float(batch.decision_mask.sum(1).float().mean()),
                 "mean_length": float(np.mean(batch.lengths))})
# code swap (teacher-forced), segments by SEGMENTS labels
segment_labels = next_color // 2 if segments_by == "subgoal" else next_color
start = mask.clone(); start[:, 1:] = (segment_labels[:, 1:] != segment_labels[:, :-1]) & mask[:, 1:]
delta = torch.tensor([[-1, 0], [0, 1], [1, 0], [0, -1]])[b["actions"]] * mask[..., None]  # (B, T, 2) row, col
segments = []  # (episode, first step, end step, target, heading, code)
for i, n in enumerate(lengths.tolist()):
    starts = start[i, :n].nonzero().flatten().tolist() + [n]
    for first, end in zip(starts[:-1], starts[1:]):
        row, col = delta[i, first:end].sum(0).tolist()
        heading = (2 if row > 0 else 0) if abs(row) >= abs(col) else (1 if col > 0 else 3)  # up right down left
        third = min(first + 2, end - 1)
        segments.append((i, first, end, int(segment_labels[i, first]), heading, o.z[i, third]))
scored = mask.clone()
for i, first, end, *_ in segments:
    scored[i, first:first + 2] = False
swap_rng = np.random.default_rng(0)


def nll_with(codes_seq):
    with torch.no_grad():
        controlled = residual if codes_seq is None else mc.apply_controller(residual, codes_seq)
        nll = base.action_nll_per_step(base.forward_upper(controlled, layer), b["actions"])
    return round(float(nll[scored].mean()), 4)


def donor_codes(match):
    z_seq, swapped = torch.zeros_like(o.z), 0
    for i, first, end, target, heading, _ in segments:
        pool = [k for k, other in enumerate(segments) if other[0] != i and match(other, target, heading)]
        if pool:
            swapped += 1
            z_seq[i, first:end] = segments[pool[swap_rng.integers(len(pool))]][5]
        else:
            z_seq[i, first:end] = o.z[i, first:end]
    return z_seq, swapped


own_held = torch.zeros_like(o.z)
for i, first, end, *_, code in segments:
    own_held[i, first:end] = code
swap = {"segments": len(segments), "scored_steps": int(scored.sum()), "own_codes": nll_with(o.z),
        "own_code_held_from_segment_step_2": nll_with(own_held),
        "prior_mean_code": nll_with(torch.zeros_like(o.z)), "no_controller": nll_with(None)}
for name, match in (("same_target", lambda other, target, heading: other[3] == target),
                    ("same_heading", lambda other, target, heading: other[4] == heading),
                    ("same_target_and_heading", lambda other, target, heading: other[3] == target and other[4] == heading),
                    ("random_segment", lambda other, target, heading: True)):
    z_seq, swapped = donor_codes(match)
    swap[name] = {"nll": nll_with(z_seq), "segments_swapped": swapped}
result = {"checkpoint": mc_path, "heldout": os.environ["HELDOUT"], "probe_test_steps": int((settled & ~train).sum()),
          "switching_vs_colour_visits": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in scores.items()
                                         if not k.startswith("beta_histogram")},
          "probes": probes, "colour_code_norms": [round(float(v), 3) for v in codes.norm(dim=1)],
          "colour_code_oracle": rows, "code_swap": {"segments_by": segments_by, **swap}}
write_json_atomic(out, result, indent=1)
print(json.dumps(result, indent=1))
