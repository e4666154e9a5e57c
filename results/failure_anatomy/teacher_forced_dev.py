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
import numpy as np
from hier_envs.datasets import load_dataset
from study_backbone import load_study_backbone, teacher_forced_steps

layer, out = int(sys.argv[1]), sys.argv[2]
n_episodes = int(os.environ.get("EPISODES", "500"))
run_dir, model, ctrl = load_study_backbone(layer)
path = Path(tempfile.mkdtemp()) / "fresh_dstar.npz"
subprocess.run([sys.executable, "-m", "hier_envs.datasets", "grid", "--episodes", str(n_episodes), "--epsilon", "0",
                "--seed", "777001", "--out", str(path), "--no-progress"], check=True, stdout=subprocess.DEVNULL)
data = load_dataset(path)

scores = {"controlled": defaultdict(lambda: defaultdict(list)), "unsteered": defaultdict(lambda: defaultdict(list))}
for step in teacher_forced_steps(model, ctrl, layer, data):
    for kind, p in step.probs.items():
        scores[kind]["p_optimal"][step.colors_visited // 2].append(float(p[step.optimal].sum()))
        scores[kind]["p_fatal"][step.colors_visited // 2].append(float(p[step.fatal].sum()))
result = {"run_dir": str(run_dir), "layer": layer, "episodes": data.n_episodes, "dataset_seed": 777001}
for kind, s in scores.items():
    result[kind] = {name: {str(k): round(float(np.mean(v)), 4) for k, v in sorted(d.items())} for name, d in s.items()}
    # expected number of fatal moves per episode within subgoal k, were each step sampled from the model
    result[kind]["p_fatal_summed_per_episode"] = {str(k): round(float(np.sum(v)) / data.n_episodes, 4)
                                                  for k, v in sorted(s["p_fatal"].items())}
print(json.dumps(result, indent=1))
json.dump(result, open(out, "w"), indent=1)
