"""Raw-action RL: finetune the pretrained base model directly in action space (SPEC A§7.1 item 1).

The paper's first baseline is "GRPO-like finetuning of the pretrained sequence model in raw
action space, with the same algorithm as §6 and no metacontroller". Everything below mirrors
:mod:`agents.internal_rl` except *what* the policy is and *when* it acts, so the two curves
differ only in the action space. Implementation details, with their spec sources:

1. **Policy** — the base model's own action head ``π_θ(a_t | o_{1:t})`` (SPEC A§3.1): a
   categorical over the 4 grid actions, or the ant Hawk SSM's diagonal Gaussian over the 8
   torques (the sampled torque is stored and scored; the env receives it clipped to its
   bounds). By default every base-model parameter is trained; ``train_from_layer = l > 0``
   trains only blocks ``l+1..L``, the final norm and the heads (the embedding and, for the
   transformer, the shared relative-position bias table feed the lower blocks, so they stay frozen).
2. **When the policy acts** — every env step: one decision per timestep, against one per
   switch in internal RL (SPEC A§6, E.2: this is why its gradient is noisier).
3. **Objective** — the internal-RL objective verbatim (SPEC A§6): PPO-style clipped surrogate,
   no critic, advantage ``A_τ = (R − mean_B R) / (std_B R + δ)`` (population std, δ = 1e-3)
   shared by every step of the episode, no entropy bonus and no KL penalty (Table A13), AdamW
   (β = 0.9, 0.999) with weight decay 0, a fixed number of epochs × minibatches per batch
   (SPEC §9.2 item 8). The loss is averaged over the valid steps of a minibatch: the SPEC A§6
   form ``E_τ[Σ_t …]`` divided by the minibatch's mean episode length, a per-minibatch scalar
   that keeps the gradient scale independent of how long episodes are (INFERRED; Adam is
   nearly invariant to it). Batches whose returns all agree carry no signal (``A ≡ 0``) and are
   skipped without an optimiser step, as in internal RL, and counted in ``zero_variance``.
4. **Rollouts** — synchronous batches: every sub-env of the batched grid env is reset with its
   own seed and stepped until all episodes ended (terminated or truncated), so a batch is
   exactly ``batch_episodes`` episodes with no bias towards short ones. The model runs one
   timestep at a time from its KV cache (``init_cache`` / ``step``, SPEC B4, B5), never
   re-encoding the history; actions are sampled from the categorical with an explicit
   ``torch.Generator`` and the log-probability of each taken action under the behaviour policy
   is stored. Reset seeds follow internal RL's scheme, so at equal ``seed`` both methods see
   the same layouts in the same order.
5. **Update** — log-probabilities of the taken actions are recomputed *with gradients* by one
   full forward pass over each minibatch of whole, right-padded episodes
   (``model(observations).action_logits``; causality keeps padding out of real steps). The
   model stays in eval mode throughout, so the ratio is exactly 1 at the first minibatch
   (dropout, 0 in every preset, would otherwise make it noisy). Nothing computed under
   ``no_grad`` is differentiated.
6. **Bookkeeping** — ``learning_curve.csv`` (one row per update: episodes, env steps,
   training-batch success rate, colours reached, episode length, per-step policy entropy, clip
   fraction, approximate KL, zero-variance flag, wall time); an atomic rolling checkpoint
   ``latest.pt`` (model, optimiser, sampling-generator state) every ``checkpoint_every``
   updates; ``model.pt`` at the end. Re-running the same call resumes and reproduces the
   uninterrupted curve exactly; a run directory made with another config or another base
   model is refused (SPEC B4).

A run directory holds::

    run_dir/
    ├── latest.pt            rolling checkpoint for resume (kind "raw_action_rl")
    ├── model.pt             the finetuned base model (load with load_raw_action_rl_model)
    └── learning_curve.csv   one row per update
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from agents.checkpoints import (
    CheckpointError,
    generator_state,
    load_checkpoint,
    load_model_state,
    save_checkpoint,
    set_generator_state,
)
from agents.internal_rl import (
    ANT_INTERNAL_RL_PRESETS,
    INTERNAL_RL_PRESETS,
    batch_normalised_advantage,
    clipped_surrogate_loss,
)
from agents.models.base_models import BaseModel, base_model_config_from_dict, base_model_config_to_dict, build_base_model
from agents.pretrain import load_base_model
from agents.rollouts import episode_horizon, make_vector_env
from agents.training_utils import (
    CsvLog, check_episode_batches, check_non_negative_ints, check_positive_ints, check_same_config, set_threads,
)

__all__ = [
    "CURVE_FIELDS",
    "RAW_ACTION_RL_KIND",
    "ANT_RAW_ACTION_RL_PRESETS",
    "RAW_ACTION_RL_PRESETS",
    "RawActionBatch",
    "RawActionRLConfig",
    "collect_raw_action_batch",
    "concatenate_raw_batches",
    "load_raw_action_rl_model",
    "make_rollout_envs",
    "raw_action_log_probs",
    "raw_action_ppo_update",
    "train_raw_action_rl",
]

RAW_ACTION_RL_KIND = "raw_action_rl"
CURVE_FIELDS = (
    "update", "episodes", "env_steps", "success_rate", "colors_visited", "episode_length", "entropy",
    "clip_fraction", "approx_kl", "zero_variance", "elapsed_s",
)
"""Columns of ``learning_curve.csv``; ``success_rate`` is the training batch's (SPEC B6)."""

SHARED_WITH_INTERNAL_RL = (
    "env_id", "total_episodes", "batch_episodes", "rollout_envs", "epochs", "minibatches", "clip_ratio",
    "learning_rate", "weight_decay", "advantage_eps", "checkpoint_every", "seed", "num_threads",
)
"""Fields copied from the internal-RL preset of the same name, so both methods are compared at
the same episode budget, batch, PPO schedule and learning rate (SPEC A§7.1 item 1)."""


@dataclass(frozen=True)
class RawActionRLConfig:
    """Raw-action RL finetuning hyperparameters (SPEC A§7.1 item 1 with A§6, Table A13; SPEC B5)."""

    env_id: str = "HierGrid-v0"
    """Post-training env (sparse reward, 12-colour task); any id with a batched grid env."""
    task: tuple[int, ...] | None = None
    """Pins the task of every episode; ``None`` keeps the env id's own (the paper's post-training
    task). Short tasks make the sparse reward reachable by an untrained policy (tests)."""
    total_episodes: int = 50_000
    """Training budget in episodes."""
    batch_episodes: int = 256
    """Episodes per update (paper: 1024)."""
    rollout_envs: int = 256
    """Envs stepped at once while collecting a batch; divides ``batch_episodes``."""
    epochs: int = 4
    """Passes over each batch (the paper gives none; INFERRED, as internal RL)."""
    minibatches: int = 4
    """Minibatches of episodes per epoch (INFERRED, as internal RL)."""
    clip_ratio: float = 0.2
    """PPO clip ε (not given in the paper; INFERRED, as internal RL)."""
    learning_rate: float = 3e-4
    """AdamW learning rate (paper 3e-5; the same value as internal RL in each preset)."""
    weight_decay: float = 0.0
    """AdamW weight decay (Table A13: 0)."""
    advantage_eps: float = 1e-3
    """δ in the batch-normalised return (SPEC A§6)."""
    train_from_layer: int = 0
    """Train blocks above this layer, the final norm and the heads; 0 trains every parameter."""
    checkpoint_every: int = 10
    """Updates between rolling checkpoints."""
    seed: int = 0
    """Seeds action sampling, minibatch order and the env layouts."""
    num_threads: int = 2
    """torch intra-op threads (2 on the 2-core machine)."""

    def __post_init__(self) -> None:
        check_positive_ints(self, ("total_episodes", "batch_episodes", "rollout_envs", "epochs", "minibatches",
                                   "checkpoint_every", "num_threads"))
        check_non_negative_ints(self, ("seed", "train_from_layer"))
        check_episode_batches(self)
        if not isinstance(self.env_id, str) or not self.env_id:
            raise ValueError(f"RawActionRLConfig.env_id must be a non-empty str, got {self.env_id!r}")
        for name, low_open in (("clip_ratio", True), ("learning_rate", True), ("advantage_eps", True),
                               ("weight_decay", False)):
            value = getattr(self, name)
            bad = not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value)
            if bad or value < 0 or (low_open and value == 0):
                bound = "> 0" if low_open else ">= 0"
                raise ValueError(f"RawActionRLConfig.{name} must be a finite number {bound}, got {value!r}")
        if self.task is not None:
            if isinstance(self.task, (str, bytes)) or not hasattr(self.task, "__iter__"):
                raise ValueError(f"RawActionRLConfig.task must be None or a sequence of colour ids, got {self.task!r}")
            task = tuple(self.task)
            if not task or any(not isinstance(c, (int, np.integer)) or isinstance(c, bool) or c < 0 for c in task):
                raise ValueError(f"RawActionRLConfig.task must be a non-empty sequence of ints >= 0, got {self.task!r}")
            object.__setattr__(self, "task", tuple(int(c) for c in task))  # the env checks the rest

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _matching_internal_rl(preset: str, presets: dict[str, Any] = INTERNAL_RL_PRESETS, **overrides: Any) -> RawActionRLConfig:
    internal = presets[preset]
    shared = {name: getattr(internal, name) for name in SHARED_WITH_INTERNAL_RL}
    return RawActionRLConfig(**{**shared, **overrides})


RAW_ACTION_RL_PRESETS: dict[str, RawActionRLConfig] = {
    "smoke": _matching_internal_rl("smoke"),
    "default": _matching_internal_rl("default"),
    "paper": _matching_internal_rl("paper", learning_rate=3e-5),
}
"""Named configurations (SPEC B5), each with the budgets of the internal-RL preset of the same
name (:data:`SHARED_WITH_INTERNAL_RL`); ``paper`` uses lr 3e-5 (Table A13)."""

ANT_RAW_ACTION_RL_PRESETS: dict[str, RawActionRLConfig] = {
    name: _matching_internal_rl(name, ANT_INTERNAL_RL_PRESETS) for name in ("smoke", "default", "paper")
}
"""Ant configurations: the budgets of :data:`agents.internal_rl.ANT_INTERNAL_RL_PRESETS`."""


# ---------------------------------------------------------------------------------------------
# Rollouts
# ---------------------------------------------------------------------------------------------


@dataclass
class RawActionBatch:
    """One batch of whole episodes at the env timescale, right-padded to the longest (SPEC A§7.1 item 1)."""

    observations: Tensor
    """``(N, T, D)`` float observations ``o_1..o_T``, zero where padded."""
    actions: Tensor
    """``(N, T)`` long actions taken (ant: ``(N, T, A)`` float sampled torques), 0 where padded."""
    log_probs: Tensor
    """``(N, T)`` log π_old(a_t | o_{1:t}) of the taken actions, 0 where padded."""
    step_mask: Tensor
    """``(N, T)`` bool, True on real steps."""
    entropies: Tensor
    """``(N, T)`` entropy of π_old at each step (differential for the ant), 0 where padded (diagnostics only)."""
    returns: Tensor
    """``(N,)`` episode returns (the sparse success reward, SPEC B2)."""
    lengths: np.ndarray
    """``(N,)`` int env steps per episode."""
    colors_visited: np.ndarray
    """``(N,)`` int progress reached along the task (diagnostics only, never an input)."""


def make_rollout_envs(config: RawActionRLConfig) -> gym.vector.VectorEnv:
    """The batched grid env of ``config.env_id`` with ``rollout_envs`` sub-envs (and ``task`` pinned, if set)."""
    if config.task is None:
        return make_vector_env(config.env_id, config.rollout_envs)
    return gym.make_vec(config.env_id, num_envs=config.rollout_envs, vectorization_mode="vector_entry_point",
                        task=list(config.task))


@torch.no_grad()
def collect_raw_action_batch(
    model: BaseModel, envs: gym.vector.VectorEnv, seed: int, generator: torch.Generator
) -> RawActionBatch:
    """Run one synchronous episode per sub-env, sampling from the model's action head.

    Sub-env ``i`` is reset with seed ``seed + i``. The model steps from its KV cache (one token
    per timestep, SPEC B4); a sub-env that ended is autoreset by the vector env, and its later
    steps are masked out (its recorded observations are zeroed).
    """
    n_envs = envs.num_envs
    max_steps = episode_horizon(envs)
    space = envs.single_action_space
    bounds = (space.low, space.high) if isinstance(space, gym.spaces.Box) else None
    obs, _ = envs.reset(seed=seed)
    cache = model.init_inference_state(n_envs, max_steps + 1)
    active = np.ones(n_envs, dtype=bool)
    returns = torch.zeros(n_envs)
    lengths = np.zeros(n_envs, dtype=np.int64)
    colors_visited = np.zeros(n_envs, dtype=np.int64)
    observations, actions, log_probs, masks, entropies = [], [], [], [], []
    for t in range(max_steps):
        obs_t = torch.from_numpy(np.asarray(obs, dtype=np.float32))  # (n, D)
        output = model.step(obs_t, cache)
        action = model.select_action(output, generator)  # (n,) or (n, A)
        mask = torch.from_numpy(active.copy())  # (n,)
        action_mask = mask.view(-1, *([1] * (action.dim() - 1)))
        observations.append(obs_t * mask[:, None])
        actions.append(action * action_mask)
        log_probs.append(-model.action_nll_per_step(output, action) * mask)
        entropies.append(model.action_entropy(output) * mask)
        masks.append(mask)
        env_action = action.numpy() if bounds is None else np.clip(action.numpy(), *bounds).astype(space.dtype)
        obs, rewards, terminated, truncated, infos = envs.step(env_action)
        ended = active & (terminated | truncated)
        returns[torch.from_numpy(ended)] = torch.from_numpy(rewards[ended]).float()
        colors_visited[ended] = infos["colors_visited"][ended]
        lengths[ended] = t + 1
        active &= ~ended
        if not active.any():
            break
    return RawActionBatch(
        torch.stack(observations, 1), torch.stack(actions, 1), torch.stack(log_probs, 1),  # (n, T, D), (n, T[, A]), (n, T)
        torch.stack(masks, 1), torch.stack(entropies, 1), returns, lengths, colors_visited,  # (n, T) ×2
    )


def concatenate_raw_batches(parts: list[RawActionBatch]) -> RawActionBatch:
    """Stack batches along episodes, right-padding time to the longest."""
    length = max(part.actions.shape[1] for part in parts)

    def pad(tensor: Tensor) -> Tensor:
        extra = length - tensor.shape[1]
        return F.pad(tensor, (0, 0, 0, extra)) if tensor.dim() == 3 else F.pad(tensor, (0, extra))

    return RawActionBatch(
        *(torch.cat([pad(getattr(p, name)) for p in parts])
          for name in ("observations", "actions", "log_probs", "step_mask", "entropies")),
        torch.cat([p.returns for p in parts]),
        np.concatenate([p.lengths for p in parts]),
        np.concatenate([p.colors_visited for p in parts]),
    )


# ---------------------------------------------------------------------------------------------
# Update
# ---------------------------------------------------------------------------------------------


def raw_action_log_probs(model: BaseModel, observations: Tensor, actions: Tensor) -> Tensor:
    """``log π_θ(a_t | o_{1:t})`` of ``actions`` (``(N, T)`` or ``(N, T, A)``) from one full forward
    pass, with gradients, ``(N, T)``."""
    return -model.action_nll_per_step(model(observations), actions)


def raw_action_ppo_update(
    model: BaseModel,
    optimizer: torch.optim.Optimizer,
    batch: RawActionBatch,
    config: RawActionRLConfig,
    generator: torch.Generator,
) -> dict[str, float]:
    """Epochs × minibatches of the clipped, critic-free update on whole episodes (SPEC A§6, §9.2 item 8).

    Each episode's batch-normalised return is its advantage at every one of its steps; the
    clipped surrogate is averaged over the minibatch's valid steps (module docstring, item 3).
    """
    if float(batch.returns.std(unbiased=False)) == 0.0:
        return {"clip_fraction": 0.0, "approx_kl": 0.0, "zero_variance": 1.0}
    advantages = batch_normalised_advantage(batch.returns, config.advantage_eps)  # (N,)
    n_episodes = len(batch.returns)
    size = max(1, n_episodes // config.minibatches)
    clip_fractions, approx_kls = [], []
    for _ in range(config.epochs):
        permutation = torch.randperm(n_episodes, generator=generator)
        for start in range(0, n_episodes, size):
            index = permutation[start : start + size]
            length = int(batch.lengths[index.numpy()].max())  # trim padding shared by the minibatch
            mask = batch.step_mask[index, :length]  # (m, T)
            new_log_probs = raw_action_log_probs(model, batch.observations[index, :length],
                                                 batch.actions[index, :length])  # (m, T)
            old_log_probs = batch.log_probs[index, :length]  # (m, T)
            episode_mean_loss, clip_fraction = clipped_surrogate_loss(
                new_log_probs, old_log_probs, advantages[index], mask, config.clip_ratio
            )
            loss = episode_mean_loss * len(index) / mask.sum()  # Σ over valid steps / their count
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                log_ratio = (new_log_probs - old_log_probs)[mask]
                approx_kls.append(float(((log_ratio.exp() - 1) - log_ratio).mean()))
            clip_fractions.append(float(clip_fraction))
    return {"clip_fraction": float(np.mean(clip_fractions)), "approx_kl": float(np.mean(approx_kls)),
            "zero_variance": 0.0}


# ---------------------------------------------------------------------------------------------
# Training loop
# ---------------------------------------------------------------------------------------------


def _trainable_parameters(model: BaseModel, train_from_layer: int) -> list[torch.nn.Parameter]:
    """Freeze everything below ``train_from_layer`` (SPEC A§3.4 numbering); return what trains."""
    if train_from_layer > model.n_layers:
        raise ValueError(
            f"RawActionRLConfig.train_from_layer={train_from_layer} exceeds the base model's {model.n_layers} layers"
        )
    if train_from_layer > 0:
        for module in (model.embed, getattr(model, "relative_bias", None), *model.blocks[:train_from_layer]):
            if module is None:  # the Hawk SSM has no position bias
                continue
            module.requires_grad_(False)
    return [parameter for parameter in model.parameters() if parameter.requires_grad]


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_same_base_model(path: Path, record: dict[str, Any], base_sha256: str) -> None:
    if record.get("base_model_sha256") != base_sha256:
        raise CheckpointError(
            f"{path}: this run directory finetunes another base model (sha256 {record.get('base_model_sha256')}, "
            f"requested {base_sha256}); use a new directory"
        )


def load_raw_action_rl_model(path: str | Path) -> BaseModel:
    """The finetuned base model from a ``model.pt`` or ``latest.pt`` written by :func:`train_raw_action_rl`."""
    record = load_checkpoint(path, expected_kind=RAW_ACTION_RL_KIND)
    try:
        model_config = base_model_config_from_dict(record["model_config"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: raw-action-RL checkpoint has no valid model config ({error})") from error
    model = build_base_model(model_config)
    load_model_state(model, record["model"], path)
    return model


def _read_curve(path: Path) -> list[dict[str, float]]:
    if not path.exists():
        return []
    rows = CsvLog(path, CURVE_FIELDS, step_field="update").read()
    curve = []
    for row in rows:
        point: dict[str, float] = {
            key: (int(float(value)) if key in ("update", "episodes", "env_steps") else float(value))
            for key, value in row.items() if value != ""
        }
        point["wall_s"] = point["elapsed_s"]  # the run-JSON name (benchmarks/reporting.py)
        curve.append(point)
    return curve


def _result(run_dir: Path, model_path: Path, finished: bool, config: RawActionRLConfig) -> dict[str, Any]:
    curve = _read_curve(run_dir / "learning_curve.csv")
    return {
        "curve": curve,
        "final_success_rate": curve[-1]["success_rate"] if curve else float("nan"),
        "wall_s": curve[-1]["elapsed_s"] if curve else 0.0,
        "model_path": str(model_path),
        "finished": finished,
        "config": config.to_dict(),
    }


def train_raw_action_rl(
    base_model_path: str | Path,
    config: RawActionRLConfig,
    run_dir: str | Path,
    progress: bool = True,
    *,
    stop_after_updates: int | None = None,
) -> dict[str, Any]:
    """Finetune the base model at ``base_model_path`` with raw-action RL (SPEC A§7.1 item 1, A§6).

    The loop: collect ``batch_episodes`` episodes (in chunks of ``rollout_envs``) with KV-cached
    sampling, then run :func:`raw_action_ppo_update`; log a CSV row; checkpoint. Re-running
    resumes from ``latest.pt`` and reproduces an uninterrupted run; a finished run is not redone.
    ``stop_after_updates`` ends the call after that many total updates (tests of resumption).

    Returns a dict: ``curve`` (one dict per update with every CSV column and ``wall_s``, the
    run-JSON schema of :mod:`benchmarks.reporting`), ``final_success_rate`` (the last update's
    training-batch success), ``wall_s``, ``model_path``, ``finished`` and ``config``.
    """
    if not isinstance(config, RawActionRLConfig):
        raise TypeError(f"config must be a RawActionRLConfig, got {type(config).__name__}")
    base_model_path = Path(base_model_path)
    if not base_model_path.is_file():
        raise FileNotFoundError(f"no base model at {base_model_path}")
    set_threads(config.num_threads)
    run_dir = Path(run_dir)
    final_path, latest_path = run_dir / "model.pt", run_dir / "latest.pt"
    config_dict = config.to_dict()
    base_sha256 = _file_sha256(base_model_path)
    if final_path.exists():
        record = load_checkpoint(final_path, expected_kind=RAW_ACTION_RL_KIND)
        check_same_config(final_path, record, config_dict, "RawActionRLConfig")
        _check_same_base_model(final_path, record, base_sha256)
        return _result(run_dir, final_path, True, config)

    model = load_base_model(base_model_path)
    model.eval()  # no dropout: rollout and update see the same policy (module docstring, item 5)
    trainable = _trainable_parameters(model, config.train_from_layer)
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, betas=(0.9, 0.999),
                                  weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    envs = make_rollout_envs(config)
    curve = CsvLog(run_dir / "learning_curve.csv", CURVE_FIELDS, step_field="update")
    update, episodes, env_steps, elapsed = 0, 0, 0, 0.0
    if latest_path.exists():
        record = load_checkpoint(latest_path, expected_kind=RAW_ACTION_RL_KIND)
        check_same_config(latest_path, record, config_dict, "RawActionRLConfig")
        _check_same_base_model(latest_path, record, base_sha256)
        load_model_state(model, record["model"], latest_path)
        optimizer.load_state_dict(record["optimizer"])
        set_generator_state(generator, record["generator"])
        update, episodes, env_steps, elapsed = record["step"], record["episodes"], record["env_steps"], record["elapsed_s"]
    curve.truncate_after(update)

    def checkpoint(path: Path) -> None:
        save_checkpoint(path, {
            "kind": RAW_ACTION_RL_KIND, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "step": update, "config": config_dict, "model_config": base_model_config_to_dict(model.config),
            "generator": generator_state(generator), "base_model_sha256": base_sha256,
            "episodes": episodes, "env_steps": env_steps, "elapsed_s": elapsed,
        })

    total_updates = config.total_episodes // config.batch_episodes
    end = total_updates if stop_after_updates is None else min(stop_after_updates, total_updates)
    chunks = config.batch_episodes // config.rollout_envs
    bar = tqdm(total=total_updates, initial=update, desc="raw-action RL", disable=not progress, dynamic_ncols=True)
    while update < end:
        tic = time.perf_counter()
        seed_base = config.seed * 1_000_003 + update * config.batch_episodes  # as internal RL: same layouts
        parts = [collect_raw_action_batch(model, envs, seed_base + k * config.rollout_envs, generator)
                 for k in range(chunks)]
        batch = concatenate_raw_batches(parts)
        stats = raw_action_ppo_update(model, optimizer, batch, config, generator)
        update += 1
        episodes += len(batch.returns)
        env_steps += int(batch.lengths.sum())
        elapsed += time.perf_counter() - tic
        success = float(batch.returns.mean())
        curve.append({
            "update": update, "episodes": episodes, "env_steps": env_steps, "success_rate": success,
            "colors_visited": float(batch.colors_visited.mean()), "episode_length": float(batch.lengths.mean()),
            "entropy": float(batch.entropies.sum() / batch.step_mask.sum()), "elapsed_s": elapsed, **stats,
        })
        bar.update(1)
        bar.set_postfix(success=f"{success:.3f}", clip=f"{stats['clip_fraction']:.2f}")
        if update % config.checkpoint_every == 0 or update == end:
            checkpoint(latest_path)
    bar.close()
    envs.close()
    if update < total_updates:
        return _result(run_dir, latest_path, False, config)
    checkpoint(final_path)
    return _result(run_dir, final_path, True, config)


@dataclass(frozen=True)
class RawActionRLArgs:
    """``python -m agents.baselines.raw_action_rl --base-model M.pt --run-dir DIR [--preset P] [--seed S]``."""

    base_model: Path
    """A base model written by :func:`agents.pretrain.pretrain` (``model.pt``)."""
    run_dir: Path
    """Where checkpoints and the learning curve go; re-running resumes."""
    preset: str = "default"
    """One of :data:`RAW_ACTION_RL_PRESETS`."""
    seed: int | None = None
    """Overrides the preset's seed."""


def main(args: RawActionRLArgs) -> None:
    if args.preset not in RAW_ACTION_RL_PRESETS:
        raise ValueError(f"unknown preset {args.preset!r}; choose from {sorted(RAW_ACTION_RL_PRESETS)}")
    config = RAW_ACTION_RL_PRESETS[args.preset]
    if args.seed is not None:
        config = dataclasses.replace(config, seed=args.seed)
    result = train_raw_action_rl(args.base_model, config, args.run_dir)
    print(f"final training success {result['final_success_rate']:.4f}; model: {result['model_path']}")


if __name__ == "__main__":
    import tyro

    main(tyro.cli(RawActionRLArgs))
