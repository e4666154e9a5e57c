"""Stock Stable-Baselines3 baselines trained from scratch on the pinpad envs (SPEC B2, B6).

Unmodified SB3 / sb3-contrib classes used through their public API:

| algo | class | observation | label | envs |
|---|---|---|---|---|
| ``recurrent_ppo`` | ``sb3_contrib.RecurrentPPO`` (``MlpLstmPolicy``) | raw (SPEC A§2.1) | faithful | grid |
| ``ppo`` | ``stable_baselines3.PPO`` (``MlpPolicy``) | :class:`PrivilegedProgressWrapper` | privileged | grid, ant |
| ``dqn`` | ``stable_baselines3.DQN`` (``MlpPolicy``) | :class:`PrivilegedProgressWrapper` | privileged | grid |
| ``ppo_raw`` | ``stable_baselines3.PPO`` (``MlpPolicy``) | raw | raw | ant |
| ``sac`` | ``stable_baselines3.SAC`` (``MlpPolicy``) | raw | raw | ant |
| ``sac_privileged`` | ``stable_baselines3.SAC`` (``MlpPolicy``) | :class:`PrivilegedProgressWrapper` | privileged | ant |

On the ant, "raw" agents see the env's observation with no memory, so they cannot know which
colour comes next (SPEC B2 last bullet); they are the from-scratch, token-level baselines of
issue #7, and the privileged ones show what the task costs once progress is given.

The raw observation is not Markov for an ordered task (SPEC B2 last bullet), so a memoryless
agent needs the privileged wrapper; the recurrent agent must remember progress itself.

Implementation details (for the benchmark tables):

- **Budget.** The unit is *training episodes* (episodes finished by the training envs), so
  that baselines compare with internal RL "at the same episode budget" (SPEC A§7.2); a
  timestep budget is also accepted, and with both the run stops at whichever comes first.
  Training stops at the first vectorised step at which the episode count reaches the budget,
  so it may overshoot by at most ``n_envs - 1`` episodes; the curve records the actual count.
  SB3's ``learn`` needs a timestep total for its schedules (DQN's ε decay, learning-rate
  schedules): with an episode budget it is the upper bound ``(episodes + n_envs) × max_steps``.
- **Evaluation.** Every ``eval_every_episodes`` training episodes (and once before training)
  the current policy plays ``eval_episodes`` episodes on separate eval envs, through SB3's
  ``evaluate_policy`` (which spreads episodes evenly over the eval envs, so short failed
  episodes are not over-counted). Success = episode return 1.0, which the pinpad gives only
  on completing the task (SPEC B2). PPO and RecurrentPPO evaluate their *stochastic* policy
  (``deterministic=False``), DQN its greedy policy (``deterministic=True``; a stochastic DQN
  evaluation would be ε-greedy under the training schedule). The eval envs are re-seeded
  with the same seed before every evaluation, so every point of a curve sees the same layouts.
- **Seeding.** Training env ``i`` is seeded ``seed + i``, eval env ``i`` is seeded
  ``seed + EVAL_SEED_OFFSET + i``, and the model gets ``seed``. With
  ``torch.set_num_threads(1)`` on CPU the same seed gives the same curve (``wall_s`` aside).
- **Timing.** ``wall_s`` in the curve is training wall-clock time *excluding* evaluation and
  checkpoint writing, summed over resumes.
- **Saving and resume.** The final model is saved with ``model.save`` (written to a temporary
  name and renamed). While training, a whole-run checkpoint (``checkpoint.zip``:
  :mod:`agents.baselines.sb3_checkpoint`) is written at the first rollout start after every
  ``checkpoint_every_s`` seconds; calling again with the same arguments resumes from it and
  gives the same curve and weights as an uninterrupted run (tested), so an interrupted run
  loses at most that interval. Another configuration in the same ``out_dir`` is refused. The
  checkpoint is deleted once ``curve.json`` and ``model.zip`` are written (DQN's holds its
  replay buffer, hundreds of MB); calling again after that returns the finished result
  (``curve.json``, which records the run configuration) and refuses another configuration. The
  harness (``benchmarks/run_all.py``) skips runs whose result JSON exists.
- **Progress.** Each evaluation point is also appended to ``progress.csv`` in ``out_dir`` as it
  is measured, so a long run can be watched (``tail -f``) and an interrupted one still shows
  how far it got. A fresh run starts the file afresh; a resumed one drops the rows measured
  after its checkpoint (they are measured again).
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from sb3_contrib import RecurrentPPO
from stable_baselines3 import DQN, PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

import hier_envs  # noqa: F401  (registers the env ids)
from agents.baselines.sb3_checkpoint import load_sb3_checkpoint, save_sb3_checkpoint
from agents.checkpoints import CheckpointError
from agents.training_utils import CsvLog, check_same_config
from hier_envs.atomic_io import atomic_write, write_json_atomic
from hier_envs.wrappers import PrivilegedProgressWrapper

__all__ = [
    "EVAL_SEED_OFFSET",
    "HYPERPARAMS",
    "SB3_ALGORITHMS",
    "SB3AlgorithmSpec",
    "make_baseline_envs",
    "resolve_hyperparams",
    "train_sb3_baseline",
]

EVAL_SEED_OFFSET = 10_000
"""Eval env ``i`` is seeded ``seed + EVAL_SEED_OFFSET + i``, disjoint from the training seeds."""
MAX_EVAL_ENVS = 8
"""At most this many eval envs (fewer when ``eval_episodes`` is smaller)."""

PROGRESS_FIELDS: tuple[str, ...] = ("episodes", "env_steps", "success_rate", "wall_s", "eval_wall_s")
"""Columns of a run's ``progress.csv`` (module docstring, "Progress")."""
CHECKPOINT_NAME = "checkpoint.zip"
"""The whole-run checkpoint in ``out_dir`` (module docstring, "Saving and resume")."""


@dataclass(frozen=True)
class SB3AlgorithmSpec:
    """One stock SB3 algorithm as used here."""

    algorithm_class: type[BaseAlgorithm]
    """The unmodified SB3 / sb3-contrib class."""
    privileged: bool
    """Whether it trains on :class:`PrivilegedProgressWrapper` (labelled in every table)."""
    eval_deterministic: bool
    """``deterministic`` passed to ``evaluate_policy`` (module docstring, "Evaluation")."""


SB3_ALGORITHMS: dict[str, SB3AlgorithmSpec] = {
    "recurrent_ppo": SB3AlgorithmSpec(RecurrentPPO, privileged=False, eval_deterministic=False),
    "ppo": SB3AlgorithmSpec(PPO, privileged=True, eval_deterministic=False),
    "dqn": SB3AlgorithmSpec(DQN, privileged=True, eval_deterministic=True),
    "ppo_raw": SB3AlgorithmSpec(PPO, privileged=False, eval_deterministic=False),
    "sac": SB3AlgorithmSpec(SAC, privileged=False, eval_deterministic=True),
    "sac_privileged": SB3AlgorithmSpec(SAC, privileged=True, eval_deterministic=True),
}
"""The baselines by name (SPEC B2 last bullet): faithful recurrent PPO, privileged PPO and DQN on
the grid; PPO and SAC, raw and privileged, on the ant. SAC evaluates its mean action."""

# The ant's PPO settings are those that trained the shipped locomotion expert on the same physics
# (hier_envs/experts/train_ant_locomotion.py: 8 envs, n_steps 256, batch 128, lr 3e-4, [256, 256]
# ReLU, log_std_init -1), without VecNormalize since the observation is already symlog-scaled.
_ANT_PPO: dict[str, Any] = {
    "policy": "MlpPolicy",
    "n_envs": 8,
    "n_steps": 256,
    "batch_size": 128,
    "n_epochs": 10,
    "learning_rate": 3e-4,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "clip_range": 0.2,
    "ent_coef": 0.0,
    "policy_kwargs": {"net_arch": [256, 256], "activation_fn": torch.nn.ReLU, "log_std_init": -1.0},
}
# rl-zoo hyperparams/sac.yml MuJoCo entries (Ant-v3: SB3 defaults with learning_starts 10000:
# lr 3e-4, batch 256, tau 0.005, gamma 0.99, one gradient step per env step, [256, 256]), with a
# smaller replay buffer and warm-up for CPU-sized budgets (INFERRED).
_ANT_SAC: dict[str, Any] = {
    "policy": "MlpPolicy",
    "n_envs": 1,
    "learning_rate": 3e-4,
    "buffer_size": 300_000,
    "learning_starts": 5_000,
    "batch_size": 256,
    "tau": 0.005,
    "gamma": 0.99,
    "train_freq": 1,
    "gradient_steps": 1,
    "policy_kwargs": {"net_arch": [256, 256]},
}


# Hyperparameters as data, rl-baselines3-zoo style: one dict per algorithm per env id. ``n_envs``
# and ``policy`` are read by train_sb3_baseline; every other key goes to the algorithm's
# constructor. None of these were tuned for the pinpad (the paper reports no stock baselines).
HYPERPARAMS: dict[str, dict[str, dict[str, Any]]] = {
    "recurrent_ppo": {
        # rl-zoo hyperparams/ppo_lstm.yml (atari / MiniGrid-like defaults: n_envs 8, n_steps 128,
        # n_epochs 4, lr 2.5e-4, clip 0.2), with a 128-unit LSTM (as rl-zoo's pybullet entries)
        # to stay CPU-sized, and a small entropy bonus for the sparse reward (INFERRED).
        "HierGrid-v0": {
            "policy": "MlpLstmPolicy",
            "n_envs": 8,
            "n_steps": 128,
            "batch_size": 256,
            "n_epochs": 4,
            "learning_rate": 2.5e-4,
            "gamma": 0.99,
            "gae_lambda": 0.95,
            "clip_range": 0.2,
            "ent_coef": 0.01,
            "vf_coef": 0.5,
            "policy_kwargs": {"lstm_hidden_size": 128},
        },
    },
    "ppo": {
        # rl-zoo hyperparams/ppo.yml "minigrid-defaults" (n_envs 8, n_steps 128, batch 64,
        # 10 epochs, lr 2.5e-4, gae 0.95, clip 0.2) with ent_coef 0.01 instead of 0.0 for the
        # sparse reward (INFERRED). No VecNormalize: the observation is already one-hot.
        "HierGrid-v0": {
            "policy": "MlpPolicy",
            "n_envs": 8,
            "n_steps": 128,
            "batch_size": 64,
            "n_epochs": 10,
            "learning_rate": 2.5e-4,
            "gamma": 0.99,
            "gae_lambda": 0.95,
            "clip_range": 0.2,
            "ent_coef": 0.01,
            "vf_coef": 0.5,
        },
    },
    "dqn": {
        # rl-zoo hyperparams/dqn.yml CartPole/Acrobot family (lr 2.5e-4, buffer 1e5, gamma 0.99,
        # final eps ~0.1) with one gradient step per 4 transitions (4 envs, train_freq 1) as in
        # the original DQN, a 256x256 MLP as rl-zoo's tuned MountainCar/LunarLander entries, and
        # the exploration fraction shortened because the schedule's total is an upper bound
        # ((episodes + n_envs) x 100 steps; module docstring) (INFERRED).
        "HierGrid-v0": {
            "policy": "MlpPolicy",
            "n_envs": 4,
            "learning_rate": 2.5e-4,
            "buffer_size": 100_000,
            "learning_starts": 1_000,
            "batch_size": 128,
            "gamma": 0.99,
            "train_freq": 1,
            "gradient_steps": 1,
            "target_update_interval": 2_000,
            "exploration_fraction": 0.05,
            "exploration_initial_eps": 1.0,
            "exploration_final_eps": 0.05,
            "policy_kwargs": {"net_arch": [256, 256]},
        },
    },
    "ppo_raw": {"HierAnt-v0": _ANT_PPO},
    "sac": {"HierAnt-v0": _ANT_SAC},
    "sac_privileged": {"HierAnt-v0": _ANT_SAC},
}
HYPERPARAMS["ppo"]["HierAnt-v0"] = _ANT_PPO


def resolve_hyperparams(algo: str, env_id: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The hyperparameters of ``algo`` on ``env_id`` with ``overrides`` applied (a new dict)."""
    if algo not in SB3_ALGORITHMS:
        raise ValueError(f"unknown SB3 algo {algo!r}; expected one of {sorted(SB3_ALGORITHMS)}")
    per_env = HYPERPARAMS[algo]
    if env_id not in per_env:
        raise ValueError(f"no {algo} hyperparameters for env {env_id!r}; known envs: {sorted(per_env)}")
    # deep copies: SB3 writes into the dicts it is given (SAC adds ``use_sde`` to ``policy_kwargs``),
    # which would change the shared table and so the run config of every later run in the process
    resolved = copy.deepcopy(per_env[env_id])
    resolved.update(copy.deepcopy(dict(overrides or {})))
    for key in ("n_envs", "policy"):
        if key not in resolved:
            raise ValueError(f"{algo} hyperparameters for {env_id!r} need {key!r}")
    if isinstance(resolved["n_envs"], bool) or not isinstance(resolved["n_envs"], int) or resolved["n_envs"] < 1:
        raise ValueError(f"n_envs must be a positive int, got {resolved['n_envs']!r}")
    return resolved


class _EpisodeBudgetCallback(BaseCallback):
    """Counts training episodes, evaluates on schedule, checkpoints and stops at the episode budget.

    ``checkpoint()`` is called at a rollout start (module :mod:`agents.baselines.sb3_checkpoint`)
    once ``checkpoint_every_s`` seconds have passed since the last one, or once
    ``stop_after_episodes`` episodes are done; in the latter case training then stops at the next
    step without counting it (the state after the checkpoint is discarded).
    """

    def __init__(
        self,
        total_episodes: int | None,
        eval_every_episodes: int,
        evaluate: Any,
        progress: bool,
        *,
        checkpoint: Any,
        checkpoint_every_s: float,
        stop_after_episodes: int | None,
        episodes: int = 0,
        next_eval: int | None = None,
    ) -> None:
        super().__init__()
        self.total_episodes = total_episodes
        self.eval_every_episodes = eval_every_episodes
        self.evaluate = evaluate
        self.episodes = episodes
        self.next_eval = eval_every_episodes if next_eval is None else next_eval
        self.progress = progress
        self.checkpoint = checkpoint
        self.checkpoint_every_s = checkpoint_every_s
        self.stop_after_episodes = stop_after_episodes
        self.stopped = False
        self._last_checkpoint = time.perf_counter()
        self._bar: Any = None

    def _on_training_start(self) -> None:
        if self.progress:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total_episodes, initial=self.episodes, unit="ep", desc=type(self.model).__name__)

    def _on_rollout_start(self) -> None:
        stop = self.stop_after_episodes is not None and self.episodes >= self.stop_after_episodes
        if stop or time.perf_counter() - self._last_checkpoint >= self.checkpoint_every_s:
            self.checkpoint(self)
            self._last_checkpoint = time.perf_counter()
        self.stopped = stop

    def _on_step(self) -> bool:
        if self.stopped:
            return False
        finished = int(np.sum(self.locals["dones"]))
        self.episodes += finished
        if self._bar is not None and finished:
            self._bar.update(finished)
        if self.episodes >= self.next_eval:
            self.evaluate(self.episodes, self.model.num_timesteps)
            while self.next_eval <= self.episodes:
                self.next_eval += self.eval_every_episodes
        return self.total_episodes is None or self.episodes < self.total_episodes

    def _on_training_end(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _positive_int(name: str, value: object, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int{' or None' if allow_none else ''}, got {value!r}")
    return int(value)


def _save_model_atomic(model: BaseAlgorithm, path: Path) -> Path:
    with atomic_write(path) as handle:
        model.save(handle)  # SB3 writes its zip into an open binary handle as it would into a path
    return path


def _max_episode_steps(env_id: str, env_kwargs: Mapping[str, Any]) -> int:
    probe = gym.make(env_id, **env_kwargs)
    try:
        steps = getattr(probe.unwrapped, "max_steps", None) or (probe.spec and probe.spec.max_episode_steps)
    finally:
        probe.close()
    if not steps:
        raise ValueError(f"cannot find the episode horizon of {env_id!r} (no max_steps or max_episode_steps)")
    return int(steps)


def make_baseline_envs(env_id: str, n_envs: int, seed: int, privileged: bool,
                       env_kwargs: Mapping[str, Any] | None = None) -> VecEnv:
    """The ``DummyVecEnv`` the baselines train and evaluate on: ``n_envs`` copies of ``env_id``
    seeded from ``seed``, behind :class:`PrivilegedProgressWrapper` when ``privileged``."""
    return make_vec_env(
        env_id,
        n_envs=n_envs,
        seed=seed,
        wrapper_class=PrivilegedProgressWrapper if privileged else None,
        env_kwargs={"render_mode": None, **(env_kwargs or {})},
        vec_env_cls=DummyVecEnv,
    )


def train_sb3_baseline(
    algo: str,
    env_id: str,
    total_episodes: int | None,
    total_timesteps: int | None,
    seed: int,
    eval_every_episodes: int,
    eval_episodes: int,
    out_dir: Path,
    progress: bool = False,
    *,
    hyperparam_overrides: Mapping[str, Any] | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    checkpoint_every_s: float = 600.0,
    stop_after_episodes: int | None = None,
) -> dict[str, Any]:
    """Train one stock SB3 baseline from scratch, or resume it, and return its learning curve (SPEC B6).

    Parameters
    ----------
    algo: ``"recurrent_ppo"`` (faithful), ``"ppo"`` or ``"dqn"`` (privileged); see
        :data:`SB3_ALGORITHMS`.
    env_id: a registered id with an entry in :data:`HYPERPARAMS` (e.g. ``"HierGrid-v0"``).
    total_episodes, total_timesteps: the training budget; at least one must be given, and with
        both the run stops at whichever is reached first (module docstring, "Budget").
    seed: seeds the model and the training and eval envs (module docstring, "Seeding").
    eval_every_episodes, eval_episodes: evaluation schedule and size.
    out_dir: receives ``model.zip`` (the final SB3 model), ``curve.json`` (the return value) and
        ``progress.csv`` (the curve so far, one row per evaluation as it happens).
    progress: show a tqdm bar over training episodes.
    hyperparam_overrides: keys replacing :data:`HYPERPARAMS` entries (presets use this).
    env_kwargs: extra ``gym.make`` keywords.
    checkpoint_every_s: seconds between whole-run checkpoints (module docstring, "Saving and
        resume"); they do not change the run, only how much an interruption costs.
    stop_after_episodes: end the call at the first rollout start with at least this many
        training episodes done, after writing a checkpoint (tests of resumption); the result then
        has ``finished`` False and no ``model_path``.

    Returns a JSON-ready dict: ``finished``, ``algo``, ``env_id``, ``seed``, ``privileged``,
    ``eval_deterministic``, ``curve`` (a list of ``{"episodes", "env_steps", "success_rate",
    "wall_s"}``, first point before training), ``final_success_rate`` (the last point),
    ``episodes``, ``env_steps``, ``wall_s`` (training time without evaluation),
    ``eval_wall_s``, ``hyperparams`` and ``model_path``.
    """
    hyperparams = resolve_hyperparams(algo, env_id, hyperparam_overrides)
    spec = SB3_ALGORITHMS[algo]
    total_episodes = _positive_int("total_episodes", total_episodes, allow_none=True)
    total_timesteps = _positive_int("total_timesteps", total_timesteps, allow_none=True)
    if total_episodes is None and total_timesteps is None:
        raise ValueError("give total_episodes or total_timesteps (or both), got neither")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    eval_every_episodes = _positive_int("eval_every_episodes", eval_every_episodes)
    eval_episodes = _positive_int("eval_episodes", eval_episodes)
    out_dir = Path(out_dir)
    env_kwargs = dict(env_kwargs or {})
    seed = int(seed)

    if isinstance(checkpoint_every_s, bool) or not isinstance(checkpoint_every_s, (int, float)) \
            or not checkpoint_every_s >= 0:
        raise ValueError(f"checkpoint_every_s must be a number >= 0, got {checkpoint_every_s!r}")
    stop_after_episodes = _positive_int("stop_after_episodes", stop_after_episodes, allow_none=True)

    torch.set_num_threads(1)
    constructor_kwargs = {k: v for k, v in hyperparams.items() if k not in ("n_envs", "policy")}
    n_envs = hyperparams["n_envs"]
    n_eval_envs = min(eval_episodes, MAX_EVAL_ENVS)
    eval_seed = seed + EVAL_SEED_OFFSET
    # With an episode budget, SB3 still needs a timestep total (for its schedules): the most
    # steps the budget can take, (episodes + episodes still running) x horizon.
    episode_bound = None
    if total_episodes is not None:
        episode_bound = (total_episodes + n_envs) * _max_episode_steps(env_id, env_kwargs)
    learn_timesteps = min(b for b in (total_timesteps, episode_bound) if b is not None)
    run_config = {
        "algo": algo, "env_id": env_id, "seed": seed, "total_episodes": total_episodes,
        "total_timesteps": total_timesteps, "eval_every_episodes": eval_every_episodes,
        "eval_episodes": eval_episodes, "hyperparams": _jsonable(hyperparams), "env_kwargs": _jsonable(env_kwargs),
    }

    checkpoint_path = out_dir / CHECKPOINT_NAME
    finished = _finished_result(out_dir, run_config)
    if finished is not None:
        return finished
    progress_log = CsvLog(out_dir / "progress.csv", PROGRESS_FIELDS, step_field="episodes")
    eval_envs = make_baseline_envs(env_id, n_eval_envs, eval_seed, spec.privileged, env_kwargs)
    if checkpoint_path.exists():
        model, train_envs, state = load_sb3_checkpoint(checkpoint_path, spec.algorithm_class, run_config)
        curve: list[dict[str, Any]] = state["curve"]
        progress_log.truncate_after(curve[-1]["episodes"])  # rows after the checkpoint are measured again
        counters = {"episodes": state["episodes"], "next_eval": state["next_eval"]}
    else:
        train_envs = make_baseline_envs(env_id, n_envs, seed, spec.privileged, env_kwargs)
        model = spec.algorithm_class(
            hyperparams["policy"], train_envs, seed=seed, device="cpu", verbose=0, **constructor_kwargs
        )
        curve, state = [], {"train_s": 0.0, "eval_s": 0.0, "checkpoint_s": 0.0}
        progress_log.truncate_after(-1)  # a fresh run starts its log afresh
        counters = {"episodes": 0, "next_eval": eval_every_episodes}
    # perf_counter() - start = train + eval + checkpoint time so far, summed over resumes
    clock = {"start": time.perf_counter() - state["train_s"] - state["eval_s"] - state["checkpoint_s"],
             "eval": state["eval_s"], "checkpoint": state["checkpoint_s"]}

    def train_seconds(now: float) -> float:
        return now - clock["start"] - clock["eval"] - clock["checkpoint"]

    def evaluate(episodes: int, env_steps: int) -> None:
        eval_start = time.perf_counter()
        eval_envs.seed(eval_seed)  # same layouts at every evaluation point
        returns, _ = evaluate_policy(
            model,
            eval_envs,
            n_eval_episodes=eval_episodes,
            deterministic=spec.eval_deterministic,
            return_episode_rewards=True,
        )
        success_rate = float(np.mean(np.asarray(returns) >= 1.0))
        eval_end = time.perf_counter()
        curve.append(
            {
                "episodes": int(episodes),
                "env_steps": int(env_steps),
                "success_rate": success_rate,
                "wall_s": round(train_seconds(eval_start), 4),
            }
        )
        clock["eval"] += eval_end - eval_start
        progress_log.append({**curve[-1], "eval_wall_s": round(eval_end - eval_start, 4)})

    def checkpoint(callback: _EpisodeBudgetCallback) -> None:
        start = time.perf_counter()
        save_sb3_checkpoint(checkpoint_path, model, {
            "config": run_config, "curve": curve, "episodes": callback.episodes, "next_eval": callback.next_eval,
            "train_s": train_seconds(start), "eval_s": clock["eval"], "checkpoint_s": clock["checkpoint"],
        })
        clock["checkpoint"] += time.perf_counter() - start

    callback = _EpisodeBudgetCallback(
        total_episodes, eval_every_episodes, evaluate, progress, checkpoint=checkpoint,
        checkpoint_every_s=float(checkpoint_every_s), stop_after_episodes=stop_after_episodes, **counters,
    )
    model_path: Path | None = None
    try:
        if not curve:
            evaluate(0, 0)
        model.learn(total_timesteps=learn_timesteps - model.num_timesteps, callback=callback,
                    reset_num_timesteps=False, progress_bar=False)
        if not callback.stopped:
            if curve[-1]["episodes"] != callback.episodes or curve[-1]["env_steps"] != model.num_timesteps:
                evaluate(callback.episodes, model.num_timesteps)
            model_path = _save_model_atomic(model, out_dir / "model.zip")
    finally:
        train_envs.close()
        eval_envs.close()

    result = {
        "finished": not callback.stopped,
        "algo": algo,
        "env_id": env_id,
        "seed": seed,
        "privileged": spec.privileged,
        "eval_deterministic": spec.eval_deterministic,
        "total_episodes": total_episodes,
        "total_timesteps": total_timesteps,
        "learn_timesteps": learn_timesteps,
        "eval_every_episodes": eval_every_episodes,
        "eval_episodes": eval_episodes,
        "curve": curve,
        "final_success_rate": curve[-1]["success_rate"],
        "episodes": callback.episodes,
        "env_steps": int(model.num_timesteps),
        "wall_s": curve[-1]["wall_s"],
        "eval_wall_s": round(clock["eval"], 4),
        "hyperparams": _jsonable(hyperparams),
        "model_path": None if model_path is None else str(model_path),
        "run_config": run_config,
    }
    if model_path is not None:
        write_json_atomic(out_dir / "curve.json", result)
        checkpoint_path.unlink(missing_ok=True)  # finished: the result replaces it
    return result


def _finished_result(out_dir: Path, run_config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The result of the finished run in ``out_dir`` (``curve.json`` next to ``model.zip``) when it
    was made with ``run_config``; ``None`` when there is none. A finished run of another
    configuration, or one whose ``curve.json`` predates the recorded ``run_config``, raises
    :class:`~agents.checkpoints.CheckpointError` naming the file, as the other trainers refuse a
    finished run directory made otherwise (a SAC run is hours of CPU: never retrain it silently)."""
    result_path = out_dir / "curve.json"
    if not (result_path.is_file() and (out_dir / "model.zip").is_file()):
        return None
    try:
        result = json.loads(result_path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{result_path}: unreadable finished-run result ({error}); use a new directory") from error
    if not isinstance(result, dict) or "run_config" not in result:
        raise CheckpointError(f"{result_path}: finished run without a recorded run configuration, so it cannot be "
                              "checked against this call's; use a new directory")
    check_same_config(result_path, {"config": result["run_config"]}, run_config, "SB3 run configuration")
    return result


def _jsonable(value: Any) -> Any:
    """Hyperparameters as JSON: containers recursed, non-JSON leaves (classes, callables) as repr."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    return repr(value)
