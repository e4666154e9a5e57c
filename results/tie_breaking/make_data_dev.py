"""Dev (session 34): D* and held-out episodes from an expert that breaks ties deterministically.

The package's ε = 0 expert is uniform over the shortest-path-optimal actions (SPEC B3); this one
takes the first optimal action in the order up, right, down, left, so the action is a function of
layout, position and subgoal. Everything else is the package's generator with the arguments of the
grid `default` D* (10,000 episodes, seed 2) and of the held-out set (300 episodes, seed 1002).
A deviation from SPEC B3, measured only: does the tie-breaking noise, which a non-causal encoder
can compress into a held code, make the metacontroller's codes carry the heading?

usage: python make_data_dev.py OUT_DIR
"""
import sys
from pathlib import Path

import hier_envs.datasets as datasets
from hier_envs.experts.grid_expert import GridExpert


class FirstOptimalExpert(GridExpert):
    """:class:`GridExpert` at ε = 0 with ties broken by action index instead of uniformly."""

    def act(self, env, rng):
        plan, cell, target = self._state(env)
        optimal, _ = plan.action_sets(cell, target)
        return min(optimal)


datasets.GridExpert = FirstOptimalExpert
out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
for name, episodes, seed in (("data_Dstar_first_optimal.npz", 10_000, 2), ("heldout_first_optimal.npz", 300, 1002)):
    if not (out / name).exists():
        data = datasets.generate_grid_dataset(episodes, 0.0, seed, progress=False)
        data.metadata["generator"]["expert"] = "FirstOptimalExpert (results/tie_breaking/make_data_dev.py)"
        datasets.save_dataset(data, out / name)
        print(name, data.n_episodes, flush=True)
