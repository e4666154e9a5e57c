"""Diagnostic (not product code): the `default` metacontroller trained on 6-subgoal walks (session 17).

The paper trains the metacontroller on D* (ε = 0 expert episodes of the 16 pretraining tasks,
3 subgoals each; SPEC A§5.3). On the CPU-sized grid backbones the ground-truth controllers fitted on
D* do not carry over to `HierGrid-v0`'s 6 subgoals, while the same controllers fitted on the 128
6-subgoal walks that use only pretraining transitions do (0.173 sampled / 0.315 greedy on the
weight-decay-0.4 backbone, `results/failure_anatomy`, reading 6). This trains the grid `default`
metacontroller (same preset, seed 0) on N fresh ε = 0 expert episodes of those walks instead of D*:
a deviation from the paper (the post-training task is then novel in its transitions only, not in
its length), measured only. It writes held-out switching F1 (±1 step) and rate–distortion on

- 300 fresh walk episodes (generation seed 21,000), and
- 300 fresh expert episodes of `HierGrid-v0`'s own task (seed 22,000): the unseen transitions.

Switching uses encoder-mean codes and β ≥ 0.5 after the forced t = 0 (`switching_scores`);
`sampled_codes` holds `heldout_rate_distortion`: action NLL, KL and switches (t = 0 included)
with sampled codes, as in training.

Walk data use generation seed 20,000, as `results/failure_anatomy/controller_data_dev.py`.
usage: python walk_metacontroller_dev.py N_EPISODES OUT.json   (environment: RUN_DIR, WORK_DIR, SEED=0, THREADS=2,
PRESET=default (smoke only to check the script), SWITCH_BIAS (MetacontrollerConfig.switch_bias_init),
KL_WEIGHT (the final α))
"""
import dataclasses, json, os, sys, time
from pathlib import Path
import numpy as np
from agents.base_model_study import _ensure_dataset
from agents.internal_rl_study import heldout_rate_distortion
from agents.models.controller import freeze
from agents.pretrain import load_base_model
from agents.switching_analysis import collect_betas, plot_switching, switching_scores
from agents.train_metacontroller import METACONTROLLER_PRESETS, load_metacontroller, train_metacontroller
from agents.training_utils import set_threads
from hier_envs.datasets import generate_grid_dataset
from hier_envs.tasks import grid_composition_task_sets

n_episodes, out = int(sys.argv[1]), Path(sys.argv[2])
run_dir = Path(os.environ.get("RUN_DIR", "runs/grid_default"))
work_dir = Path(os.environ.get("WORK_DIR", "runs/walk_mc"))
seed, threads = int(os.environ.get("SEED", "0")), int(os.environ.get("THREADS", "2"))
set_threads(threads)
pools = grid_composition_task_sets()
walks = [list(t) for t in pools["seen transitions, 6 subgoals"]]
post = [list(t) for t in pools["unseen transitions, 6 subgoals (post-training task)"]]
work_dir.mkdir(parents=True, exist_ok=True)


def cached(name: str, n: int, data_seed: int, tasks: list[list[int]]):
    """The study's load-or-generate helper: a cached file made with other settings is refused."""
    return _ensure_dataset(work_dir / name, {"episodes": n, "epsilon": 0.0, "seed": data_seed},
                           lambda: generate_grid_dataset(n, 0.0, data_seed, env_kwargs={"tasks": tasks}, progress=False))


t0 = time.time()
data = cached(f"walks_{n_episodes}.npz", n_episodes, 20_000, walks)
heldout = {"walks": cached("heldout_walks.npz", 300, 21_000, walks),
           "HierGrid-v0 task": cached("heldout_post.npz", 300, 22_000, post)}
gen_s = time.time() - t0
base = freeze(load_base_model(run_dir / "base_model" / "model.pt"))
base.eval()
layer = base.config.controlled_layer
config = dataclasses.replace(METACONTROLLER_PRESETS[os.environ.get("PRESET", "default")], seed=seed, num_threads=threads)
if "SWITCH_BIAS" in os.environ:  # the switching unit's initial bias (MetacontrollerConfig.switch_bias_init, default 0)
    config = dataclasses.replace(config, metacontroller=dataclasses.replace(
        config.metacontroller, switch_bias_init=float(os.environ["SWITCH_BIAS"])))
run_tag = f"_bias{os.environ['SWITCH_BIAS']}" if "SWITCH_BIAS" in os.environ else ""
if "KL_WEIGHT" in os.environ:  # α after the early phase and the ramp (the preset's 0.3 otherwise)
    config = dataclasses.replace(config, metacontroller=dataclasses.replace(
        config.metacontroller, kl_weight=float(os.environ["KL_WEIGHT"])))
    run_tag += f"_alpha{os.environ['KL_WEIGHT']}"
t0 = time.time()
mc_path = train_metacontroller(config, base, data, work_dir / f"metacontroller_seed{seed}{run_tag}", progress=False)
train_s = time.time() - t0
mc = freeze(load_metacontroller(mc_path, base.config.width))
result = {"run_dir": str(run_dir), "data": f"{n_episodes} expert episodes (eps 0, seed 20000) on the {len(walks)} seen-transition 6-subgoal walks",
          "data_steps": int(data.n_steps), "data_sha256": data.sha256, "metacontroller": str(mc_path),
          "config": config.to_dict(), "generation_s": round(gen_s, 1), "train_s_this_call": round(train_s, 1), "heldout": {}}
for name, held in heldout.items():
    episodes = collect_betas(base, mc, held, np.arange(held.n_episodes), layer)
    scores = switching_scores(episodes, tolerance=1)
    plot_switching(episodes, scores, out.with_name(f"{out.stem}_{name.split()[0]}.png"))
    result["heldout"][name] = {"episodes": held.n_episodes, "steps": int(held.n_steps),
                               **{k: scores[k] for k in ("precision", "recall", "f1", "switches_per_episode")},
                               "sampled_codes": heldout_rate_distortion(base, mc, held, layer, config.metacontroller.kl_weight)}
print(json.dumps(result, indent=1))
out.write_text(json.dumps(result, indent=1))
