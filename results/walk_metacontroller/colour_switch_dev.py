"""Diagnostic (not product code): do the walk-trained metacontroller's extra switches fall on colour visits?

A grid subgoal is a pair of colours (SPEC A§2.1), so a 6-subgoal episode has 5 subgoal boundaries
and 11 colour boundaries (the target colour changes on each visit). This replays the held-out
expert episodes of `walk_metacontroller_dev.py` (same generator, seed and only-success rule; the
replayed actions are checked against the stored ones), labels each step with the colour the
expert is heading for (`info["next_color"]`), and scores the metacontroller's switches (β ≥ 0.5,
±1 step, `switching_scores`) against the colour boundaries as well as the subgoal boundaries.
usage: python colour_switch_dev.py OUT.json MC.pt...   (environment: RUN_DIR, WORK_DIR=runs/walk_mc, THREADS=1)
"""
import json, os, sys
from pathlib import Path
import gymnasium as gym
import numpy as np
import hier_envs  # noqa: F401  (registers the env ids)
from agents.models.controller import freeze
from agents.pretrain import load_base_model
from agents.switching_analysis import collect_betas, switching_scores
from agents.train_metacontroller import load_metacontroller
from agents.training_utils import set_threads
from hier_envs.experts.grid_expert import GridExpert
from hier_envs.datasets import load_dataset

set_threads(int(os.environ.get("THREADS", "1")))
out, mc_paths = Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]
run_dir = Path(os.environ.get("RUN_DIR", "runs/grid_default"))
work_dir = Path(os.environ.get("WORK_DIR", "runs/walk_mc"))


def colour_labels(held) -> list[np.ndarray]:
    """Per-step target colour of each stored episode, from a replay of its generator."""
    generator = held.metadata["generator"]
    seed, expert = int(generator["seed"]), GridExpert(float(generator["epsilon"]))
    env = gym.make(held.metadata["env_id"], disable_env_checker=True,
                   tasks=held.metadata["env_config"]["tasks"]).unwrapped
    rng, labels, first = np.random.default_rng([seed, 1]), [], True
    while len(labels) < held.n_episodes:
        _, info = env.reset(seed=seed if first else None)
        first, actions, colours = False, [], []
        while True:
            action = expert.act(env, rng)
            colours.append(info["next_color"]); actions.append(action)
            _, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
        if not info["success"]:
            continue  # the generator keeps successes only
        stored = held.episode(len(labels))["actions"]
        if not np.array_equal(np.asarray(stored), np.asarray(actions)):
            raise RuntimeError(f"replay of episode {len(labels)} differs from the stored actions")
        labels.append(np.asarray(colours))
    return labels


base = freeze(load_base_model(run_dir / "base_model" / "model.pt")); base.eval()
layer = base.config.controlled_layer
sets = {name: load_dataset(work_dir / f"{name}.npz") for name in ("heldout_walks", "heldout_post")}
colours = {name: colour_labels(held) for name, held in sets.items()}
result = {"run_dir": str(run_dir), "tolerance": 1, "rows": []}
for mc_path in mc_paths:
    mc = freeze(load_metacontroller(mc_path, base.config.width))
    for name, held in sets.items():
        episodes = collect_betas(base, mc, held, np.arange(held.n_episodes), layer)
        for against, labelled in (("subgoal", episodes), ("colour", [(b, c) for (b, _), c in zip(episodes, colours[name])])):
            s = switching_scores(labelled, tolerance=1)
            result["rows"].append({"metacontroller": str(mc_path), "set": name, "boundaries": against,
                                   **{k: s[k] for k in ("precision", "recall", "f1", "switches_per_episode")}})
            print(json.dumps(result["rows"][-1]), flush=True)
out.write_text(json.dumps(result, indent=1))
