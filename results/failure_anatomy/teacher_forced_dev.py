"""Diagnostic (not product code): the same per-step scores as heading_dev.py, but teacher-forced
on fresh expert episodes (D*-like, ε = 0, a seed D* never used), so that no rollout drift enters
(session 15).

For every step of every episode: p_optimal (model mass on the expert's shortest-path actions
toward the current target colour) and p_fatal (mass on moves into any other colour), with the
study's layer-LAYER ground-truth controllers and unsteered. Layouts are read back from the first
observation (planes: 4 walls, 8 colours, agent).
usage: python teacher_forced_dev.py LAYER OUT.json   (environment: RUN_DIR, EPISODES=500, THREADS=1)
"""
import json, os, subprocess, sys, tempfile
from collections import defaultdict
from pathlib import Path
import numpy as np, torch
from agents.pretrain import batch_tensors
from hier_envs.datasets import load_dataset
from hier_envs.experts.grid_expert import LayoutPlan
from hier_envs.grid_layout import LayoutSampler
from study_backbone import load_study_backbone

layer, out = int(sys.argv[1]), sys.argv[2]
n_episodes = int(os.environ.get("EPISODES", "500"))
run_dir, model, ctrl = load_study_backbone(layer)
path = Path(tempfile.mkdtemp()) / "fresh_dstar.npz"
subprocess.run([sys.executable, "-m", "hier_envs.datasets", "grid", "--episodes", str(n_episodes), "--epsilon", "0",
                "--seed", "777001", "--out", str(path), "--no-progress"], check=True, stdout=subprocess.DEVNULL)
data = load_dataset(path)
PLANES = LayoutSampler(7, 8, 4)  # only its to_layout: planes are walls, colours, agent

scores = {"controlled": defaultdict(lambda: defaultdict(list)), "unsteered": defaultdict(lambda: defaultdict(list))}
for start in range(0, data.n_episodes, 100):
    idx = np.arange(start, min(start + 100, data.n_episodes))
    b = batch_tensors(data, idx)
    with torch.no_grad():
        lower = model.forward_lower(b["observations"], layer)
        probs = {"controlled": torch.softmax(model.forward_upper(ctrl(lower, b["subgoals"].clamp(min=0)), layer).action_logits, -1).numpy(),
                 "unsteered": torch.softmax(model.forward_upper(lower, layer).action_logits, -1).numpy()}
    for row, i in enumerate(idx):
        ep = data.episode(int(i))
        planes = ep["observations"][:, : 13 * 49].reshape(-1, 13, 49)
        cells = planes[:, 12].argmax(-1)
        layout = PLANES.to_layout(planes[0].argmax(-1))  # one cell per plane: the placement
        plan, task, visited = LayoutPlan(layout), [c for c in ep["task"] if c >= 0], 0
        for t in range(len(ep["actions"])):
            e, c0 = task[visited], int(cells[t])
            opt, safe = plan.action_sets(c0, e)
            fatal = [a for a in range(4) if a not in safe]
            assert int(ep["actions"][t]) in opt, "the expert's own action must be optimal"
            for kind, p in probs.items():
                scores[kind]["p_optimal"][visited // 2].append(float(p[row, t, opt].sum()))
                scores[kind]["p_fatal"][visited // 2].append(float(p[row, t, fatal].sum()))
            if plan.cell_color[int(cells[t + 1])] == e:
                visited += 1
result = {"run_dir": str(run_dir), "layer": layer, "episodes": data.n_episodes, "dataset_seed": 777001}
for kind, s in scores.items():
    result[kind] = {name: {str(k): round(float(np.mean(v)), 4) for k, v in sorted(d.items())} for name, d in s.items()}
    # expected number of fatal moves per episode within subgoal k, were each step sampled from the model
    result[kind]["p_fatal_summed_per_episode"] = {str(k): round(float(np.sum(v)) / data.n_episodes, 4)
                                                  for k, v in sorted(s["p_fatal"].items())}
print(json.dumps(result, indent=1))
json.dump(result, open(out, "w"), indent=1)
