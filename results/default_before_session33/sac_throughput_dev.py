"""Development measurement (not product code): how fast SB3 SAC trains on HierAnt-v0 here.

The project's ant SAC hyperparameters (``agents.baselines.sb3_agents``: one gradient step per env
step after 5,000 random warm-up steps), one torch thread, seed 0, 12,000 env steps. Writes the
warm-up speed and the learning speed between env steps 7,000 and 12,000 to the JSON named on the
command line; it says why the ant SAC rows of ``run_all.py`` do not fit a session here.

    python results/default_before_session33/sac_throughput_dev.py results/default_before_session33/sac_throughput.json
"""

import json
import sys
import time
from pathlib import Path

import torch
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import BaseCallback

import hier_envs  # noqa: F401  (registers HierAnt-v0)
from agents.baselines.sb3_agents import make_baseline_envs, resolve_hyperparams

MARKS = (5_000, 7_000, 12_000)


class StepClock(BaseCallback):
    """Records ``time.perf_counter()`` when training reaches each env step in ``MARKS``."""

    def __init__(self) -> None:
        super().__init__()
        self.times: dict[int, float] = {}

    def _on_step(self) -> bool:
        if self.num_timesteps in MARKS:
            self.times[self.num_timesteps] = time.perf_counter()
        return True


def main(out_path: Path) -> None:
    torch.set_num_threads(1)
    hyperparams = resolve_hyperparams("sac", "HierAnt-v0")
    hyperparams.pop("policy")
    env = make_baseline_envs("HierAnt-v0", hyperparams.pop("n_envs"), 0, False, {})
    model = SAC("MlpPolicy", env, seed=0, verbose=0, **hyperparams)
    clock = StepClock()
    start = time.perf_counter()
    model.learn(MARKS[-1], callback=clock)
    result = {
        "warmup_steps_per_s": MARKS[0] / (clock.times[MARKS[0]] - start),
        "learning_steps_per_s_7k_to_12k": (MARKS[2] - MARKS[1]) / (clock.times[MARKS[2]] - clock.times[MARKS[1]]),
        "threads": torch.get_num_threads(),
        "learning_starts": hyperparams["learning_starts"],
        "gradient_steps": hyperparams["gradient_steps"],
    }
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
