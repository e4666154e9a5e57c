"""Diagnostic (not product code): the expert drives `HierGrid-v0` through its first C colours, then
the steered base model takes over (session 21).

Teacher forcing (``teacher_forced_legs_dev.py``) scores the controllers one step at a time on the
expert's path; a rollout lets the steered model walk the whole task, so each leg starts from the
context its own earlier legs left. This sits between the two: for C = 0, 2, …, 10 the grid expert
(ε = 0) acts until C colours are visited, and from then on the base model, steered by the
controllers of CTRL switched by the ground-truth subgoal, acts alone (sampled actions). The model
reads every observation from the first step, the expert's part included, with the controllers
applied throughout, as in teacher forcing. Per C:

- ``next_leg``: P(the model reaches colour C+1), the leg into a new pair, from the expert's context;
- ``pair``: P(it also reaches the partner C+2);
- ``success``: P(it completes the task from there);
- ``handover_step``: mean step at which the model took over; ``endings`` after the takeover.

Rates are over the episodes the model took over; ``expert_failed_first`` counts the others (the
expert fails on about 1 layout in 500, whose walls cut a colour off).

C = 0 is the ordinary rollout. Layouts: env seeds SEED + i (default 10,000, the study's).

usage: python handover_dev.py MODEL.pt CTRL.pt LAYER OUT.json   (environment: EPISODES=500, THREADS=1, SEED=10000)
"""
import json, os, sys, time
from collections import Counter
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import hier_envs  # noqa: F401  (registers the envs)
from agents.controllers import load_subgoal_controllers
from agents.models.controller import freeze
from agents.pretrain import load_base_model
from agents.rollouts import episode_endings
from hier_envs.experts.grid_expert import GridExpert
from hier_envs.tasks import GRID_POSTTRAIN_TASK

torch.set_num_threads(int(os.environ.get("THREADS", "1")))
model_path, ctrl_path, layer, out = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
n_episodes, seed = int(os.environ.get("EPISODES", "500")), int(os.environ.get("SEED", "10000"))
model = freeze(load_base_model(model_path))
model.eval()
ctrl = freeze(load_subgoal_controllers(ctrl_path, model.config.width, expect_layer=layer, expect_base_model=model))
n_colors = len(GRID_POSTTRAIN_TASK)


@torch.no_grad()
def run(handover: int) -> dict:
    envs = [gym.make("HierGrid-v0") for _ in range(n_episodes)]
    expert, rng = GridExpert(0.0), np.random.default_rng([seed, handover])
    generator = torch.Generator().manual_seed(seed + handover)
    resets = [env.reset(seed=seed + i) for i, env in enumerate(envs)]
    obs = np.stack([o for o, _ in resets]).astype(np.float32)
    subgoal = np.array([info["subgoal"] for _, info in resets], dtype=np.int64)
    visited = np.zeros(n_episodes, dtype=np.int64)
    active = np.ones(n_episodes, dtype=bool)
    taken_at = np.full(n_episodes, -1, dtype=np.int64)
    endings = np.full(n_episodes, "", dtype=object)
    max_steps = envs[0].unwrapped.max_steps
    cache = model.init_inference_state(n_episodes, max_steps + 1)
    for t in range(max_steps):
        residual = model.step_lower(torch.from_numpy(obs), cache, layer)
        residual = ctrl(residual, torch.from_numpy(subgoal.clip(min=0)))
        model_actions = model.select_action(model.step_upper(residual, cache, layer), generator, False).numpy()
        success, truncated = np.zeros(n_episodes, dtype=bool), np.zeros(n_episodes, dtype=bool)
        failure, ended = np.full(n_episodes, None, dtype=object), np.zeros(n_episodes, dtype=bool)
        for i in np.flatnonzero(active):
            if visited[i] >= handover and taken_at[i] < 0:
                taken_at[i] = t
            action = int(model_actions[i]) if taken_at[i] >= 0 else expert.act(envs[i], rng)
            o, _, terminated, truncated[i], info = envs[i].step(action)
            obs[i], visited[i] = o, info["colors_visited"]
            subgoal[i] = -1 if info["subgoal"] is None else info["subgoal"]
            success[i], failure[i], ended[i] = info["success"], info["failure"], terminated or truncated[i]
        endings[ended] = episode_endings(success, failure, truncated)[ended]  # the rollouts' labels and check
        active &= ~ended
        if not active.any():
            break
    endings[active] = "timeout"
    taken = taken_at >= 0  # the expert fails on the rare layout whose walls cut a colour off (it scores 0.998)
    visited, endings = visited[taken], endings[taken]
    return {"handover_colors": handover, "episodes": int(taken.sum()), "expert_failed_first": int((~taken).sum()),
            "next_leg": round(float(np.mean(visited >= handover + 1)), 4),
            "pair": round(float(np.mean(visited >= handover + 2)), 4),
            "success": round(float(np.mean(endings == "success")), 4),
            "handover_step": round(float(taken_at[taken].mean()), 2),
            "endings": dict(Counter(endings.tolist())),
            "colors_visited_counts": np.bincount(visited, minlength=n_colors + 1).tolist()}


result = {"model": str(model_path), "controllers": str(ctrl_path), "layer": layer, "seed": seed, "rows": []}
for handover in range(0, n_colors, 2):
    t0 = time.time()
    row = run(handover)
    row["wall_s"] = round(time.time() - t0, 1)
    result["rows"].append(row)
    print(json.dumps(row), flush=True)
out.write_text(json.dumps(result, indent=1))
