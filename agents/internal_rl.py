"""Internal RL: reinforcement learning in the metacontroller's code space (SPEC A§6, Alg. 1–3).

The frozen base model, the frozen switching unit, history GRU and decoder, and the real
environment together form the environment of a small causal policy ``π(z | e_{1:t})``; only
the policy is trained. Implementation details, with their spec sources:

1. **When the policy acts** — at ``t = 0`` and whenever ``β_t ≥ switch_threshold`` (0.5,
   SPEC A§6, §9.2 item 6); between switches the code is held exactly (Heaviside β).
2. **Switching state** — the switching unit reads ``(e_t, h_{t−1}, z_{t−1})`` with the history
   GRU stepped every timestep, exactly as in metacontroller training (§9.2 item 4, tested).
3. **Observation** — the *uncontrolled* residual ``e_{t,l}`` at switch times; the policy is
   recurrent over its own decisions (SPEC A§6 "Observation").
4. **Policy** — a GRU (width 256) over the decision sequence with a linear Gaussian head over
   ``z ∈ R^8`` and a state-independent learned log-std. The paper uses a 1-layer Hawk SSM of
   width 256 (Table A13); a GRU is the recurrent block here (INFERRED substitute). The mean head
   starts at zero and the std at 1, so the initial policy is the metacontroller's prior N(0, I).
5. **Objective** — PPO-style clipped surrogate without a critic (SPEC A§6): the advantage of an
   episode is ``(R − mean_B R) / (std_B R + δ)`` over the batch, δ = 1e-3, shared by all its
   decisions; the log-probability is the joint Gaussian over all 8 dimensions, at switch steps
   only; a fixed number of epochs × minibatches per batch (§9.2 item 8). No entropy bonus
   (Table A13), no KL penalty. Log-probabilities for the update are recomputed with gradients
   from stored inputs; nothing computed under ``no_grad`` is differentiated.
6. **Rollouts** — synchronous batches of episodes on the batched grid env (or a synchronous
   vector of ant envs) with one-step incremental base-model inference (KV cache or recurrent
   state): lower blocks → ``e_t`` → switch → policy → controller → upper blocks (§9.2 item 9).
   The base model's action is sampled from its head (or its mode / mean with
   ``greedy_actions``, the ant's choice); continuous actions are clipped to the env's bounds.
   Reward is the env's sparse success reward.
7. **Bookkeeping** — learning curve (success rate vs episodes and env steps), clip fraction,
   decisions per episode and zero-variance batches to ``learning_curve.csv``; checkpoints every
   ``checkpoint_every`` updates; resuming continues the same curve (generator states saved).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from agents.checkpoints import (
    generator_state,
    load_checkpoint,
    load_model_state,
    module_fingerprint,
    save_checkpoint,
    set_generator_state,
)
from agents.metacontroller import SWITCH_THRESHOLD, Metacontroller
from agents.models.controller import freeze
from agents.models.base_models import BaseModel
from agents.rollouts import episode_horizon, make_vector_env
from agents.training_utils import (
    CsvLog, check_episode_batches, check_non_negative_ints, check_numbers, check_positive_ints, check_same_config,
    check_same_inputs, set_threads,
)

INTERNAL_RL_KIND = "internal_rl"
CURVE_FIELDS = (
    "update", "episodes", "env_steps", "success_rate", "decisions_per_episode", "clip_fraction",
    "approx_kl", "policy_std", "zero_variance", "elapsed_s",
)


@dataclass(frozen=True)
class InternalRLConfig:
    """Internal RL hyperparameters (SPEC A§6, Table A13; presets SPEC B5)."""

    env_id: str = "HierGrid-v0"
    """Post-training task (sparse reward; grid: 12 colours, ``HierAnt-v0``: 4)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keywords for the env, over its registered ones (e.g. ``{"task": [0, 1, 4, 5, 2, 3]}`` pins
    a task; SPEC B2). Empty: the registered env as it is."""
    greedy_actions: bool = False
    """The base model acts with its head's mode / mean instead of sampling (ant: its D* is the
    expert's mean action; exploration lives in the code space)."""
    switch_threshold: float = SWITCH_THRESHOLD
    """A new code is drawn when β_t reaches this (SPEC A§6)."""
    policy_hidden: int = 256
    """Width of the recurrent policy (Table A13: 256)."""
    initial_log_std: float = 0.0
    """Initial log-std of the Gaussian over z (std 1 = the metacontroller prior)."""
    total_episodes: int = 50_000
    """Training budget in episodes."""
    batch_episodes: int = 256
    """Episodes per update (paper: 1024)."""
    rollout_envs: int = 256
    """Envs stepped at once while collecting a batch."""
    epochs: int = 4
    """Passes over each batch (the paper gives none; INFERRED)."""
    minibatches: int = 4
    """Minibatches per epoch (INFERRED)."""
    clip_ratio: float = 0.2
    """PPO clip ε (not given in the paper; INFERRED)."""
    learning_rate: float = 3e-4
    """AdamW learning rate (paper 3e-5 over 1e5 updates; our budget has ~200 updates)."""
    weight_decay: float = 0.0
    """Table A13."""
    advantage_eps: float = 1e-3
    """δ in the batch-normalised return (SPEC A§6)."""
    checkpoint_every: int = 10
    """Updates between checkpoints."""
    seed: int = 0
    num_threads: int = 2

    def __post_init__(self) -> None:
        check_positive_ints(self, ("policy_hidden", "total_episodes", "batch_episodes", "rollout_envs", "epochs",
                                   "minibatches", "checkpoint_every", "num_threads"))
        check_non_negative_ints(self, ("seed",))
        if not isinstance(self.env_id, str) or not self.env_id:
            raise ValueError(f"InternalRLConfig.env_id must be a non-empty str, got {self.env_id!r}")
        check_episode_batches(self)
        if not isinstance(self.env_kwargs, dict) or not all(isinstance(key, str) for key in self.env_kwargs):
            raise TypeError(f"InternalRLConfig.env_kwargs must be a dict with str keys, got {self.env_kwargs!r}")
        check_numbers(self, {"switch_threshold": "(0, 1]", "clip_ratio": "> 0", "learning_rate": "> 0",
                             "weight_decay": ">= 0", "advantage_eps": "> 0", "initial_log_std": "finite"})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


ADDED_CONFIG_FIELDS = {"env_kwargs": {}}
"""Fields added after internal-RL checkpoints were first written, with the value that reproduces
those runs (``check_same_config(added_fields=...)``)."""


INTERNAL_RL_PRESETS: dict[str, InternalRLConfig] = {
    "smoke": InternalRLConfig(
        total_episodes=64, batch_episodes=32, rollout_envs=32, policy_hidden=32, checkpoint_every=1, num_threads=1
    ),
    "default": InternalRLConfig(),
    "paper": InternalRLConfig(total_episodes=1_000_000, batch_episodes=1024, rollout_envs=512, learning_rate=3e-5),
}
"""Grid presets: ``paper`` is Table A13."""

ANT_INTERNAL_RL_PRESETS: dict[str, InternalRLConfig] = {
    "smoke": InternalRLConfig(
        env_id="HierAnt-v0", greedy_actions=True, total_episodes=8, batch_episodes=4, rollout_envs=4, policy_hidden=32,
        checkpoint_every=1, num_threads=1,
    ),
    "default": InternalRLConfig(
        env_id="HierAnt-v0", greedy_actions=True, total_episodes=4096, batch_episodes=64, rollout_envs=64,
        checkpoint_every=4,
    ),
    "paper": InternalRLConfig(
        env_id="HierAnt-v0", greedy_actions=True, total_episodes=1_000_000, batch_episodes=256, rollout_envs=256,
        learning_rate=3e-5,
    ),
}
"""Ant presets: ``paper`` is Table A14 (batch 256). MuJoCo steps dominate on CPU (a synchronous
vector of 64 ant envs runs about 2,000 env steps/s), so ``default`` trains on 4,096 episodes in
batches of 64."""


class CodePolicy(nn.Module):
    """Recurrent Gaussian policy over controller codes, stepped at switch times (SPEC A§6)."""

    def __init__(self, width: int, latent_dim: int, hidden: int, initial_log_std: float) -> None:
        super().__init__()
        self.input_norm = nn.LayerNorm(width, elementwise_affine=False)
        self.cell = nn.GRUCell(width, hidden)
        self.mean_head = nn.Linear(hidden, latent_dim)
        nn.init.zeros_(self.mean_head.weight)
        nn.init.zeros_(self.mean_head.bias)
        self.log_std = nn.Parameter(torch.full((latent_dim,), float(initial_log_std)))
        self.hidden = hidden

    def initial_state(self, batch: int) -> Tensor:
        return torch.zeros(batch, self.hidden)

    def step(self, residual: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """New recurrent state and the mean of z, from ``e`` ``(B, W)`` and ``state`` ``(B, hidden)``."""
        state = self.cell(self.input_norm(residual), state)
        return state, self.mean_head(state)

    def log_prob(self, mean: Tensor, z: Tensor) -> Tensor:
        """Joint Gaussian log-density over all code dimensions, ``(...)``."""
        std = self.log_std.exp()
        return (-0.5 * ((z - mean) / std).pow(2) - self.log_std - 0.5 * np.log(2 * np.pi)).sum(-1)

    def sequence_log_prob(self, residuals: Tensor, codes: Tensor) -> Tensor:
        """Log-probabilities of stored decisions, recomputed with gradients.

        ``residuals (B, M, W)`` and ``codes (B, M, Z)`` are each episode's decisions in order
        (padded past its count); returns ``(B, M)``.
        """
        state = self.initial_state(residuals.shape[0])
        log_probs = []
        for m in range(residuals.shape[1]):
            state, mean = self.step(residuals[:, m], state)
            log_probs.append(self.log_prob(mean, codes[:, m]))
        return torch.stack(log_probs, 1)


@dataclass
class EpisodeBatch:
    """One batch of episodes at the abstract timescale (SPEC A§6, Alg. 3)."""

    residuals: Tensor
    """``(N, M, W)`` uncontrolled residual at each decision."""
    codes: Tensor
    """``(N, M, Z)`` sampled codes."""
    log_probs: Tensor
    """``(N, M)`` log-probabilities under the behaviour policy."""
    decision_mask: Tensor
    """``(N, M)`` bool."""
    returns: Tensor
    """``(N,)`` episode returns (sparse success reward)."""
    lengths: np.ndarray
    """``(N,)`` env steps per episode."""


def learned_from(curve_rows: Sequence[Mapping[str, Any]]) -> list[tuple[float, float]]:
    """``(episodes, env_steps)`` that each learning-curve row's policy had learned from.

    Row ``k`` of a critic-free trainer's curve (internal RL, raw-action RL) holds the success of
    batch ``k``, collected by the policy trained on the batches before it, while its ``episodes``
    and ``env_steps`` already count batch ``k``. A curve plotted against what its policy had
    learned from, as the SB3 evaluations are, takes the previous row's counts: 0 for the first,
    untrained batch.
    """
    counts = [(float(row["episodes"]), float(row["env_steps"])) for row in curve_rows]
    return [(0.0, 0.0), *counts[:-1]] if counts else []


def batch_normalised_advantage(returns: Tensor, eps: float) -> Tensor:
    """``(R − mean R) / (std R + δ)`` over the batch, population std (SPEC A§6)."""
    return (returns - returns.mean()) / (returns.std(unbiased=False) + eps)


def clipped_surrogate_loss(
    new_log_probs: Tensor, old_log_probs: Tensor, advantages: Tensor, decision_mask: Tensor, clip_ratio: float
) -> tuple[Tensor, Tensor]:
    """−E_τ[Σ_m min(ρ A_τ, clip(ρ, 1 ± ε) A_τ)] and the clipped fraction (SPEC A§6).

    ``new/old_log_probs`` and ``decision_mask`` are ``(N, M)``, ``advantages`` ``(N,)``; the
    sum runs over each episode's decisions and the mean over episodes.
    """
    ratio = torch.exp(new_log_probs - old_log_probs)  # (N, M)
    advantage = advantages[:, None]  # (N, 1)
    surrogate = torch.minimum(ratio * advantage, ratio.clamp(1 - clip_ratio, 1 + clip_ratio) * advantage)
    weights = decision_mask.to(surrogate.dtype)
    loss = -(surrogate * weights).sum(1).mean()
    clipped = ((ratio - 1).abs() > clip_ratio).to(surrogate.dtype)
    clip_fraction = (clipped * weights).sum() / weights.sum().clamp(min=1)
    return loss, clip_fraction


class CachedStepper:
    """One base-model timestep from the KV cache or recurrent state: lower blocks, then upper
    blocks (SPEC B4, §9.2 item 9). ``upper`` returns the model's one-step output."""

    def __init__(self, base_model: BaseModel, layer: int) -> None:
        self.base_model, self.layer = base_model, layer

    def reset(self, num_envs: int, max_steps: int) -> None:
        self.cache = self.base_model.init_inference_state(num_envs, max_steps + 1)

    def lower(self, obs: Tensor) -> Tensor:
        return self.base_model.step_lower(obs, self.cache, self.layer)  # (B, W)

    def upper(self, controlled: Tensor) -> Any:
        return self.base_model.step_upper(controlled, self.cache, self.layer)


class ReencodingStepper(CachedStepper):
    """The same timestep by re-encoding the whole history (the slow reference for benchmarks/tests)."""

    def reset(self, num_envs: int, max_steps: int) -> None:
        self.observations: list[Tensor] = []
        self.controlled: list[Tensor] = []

    def lower(self, obs: Tensor) -> Tensor:
        self.observations.append(obs)
        history = torch.stack(self.observations, 1)  # (B, t, D)
        return self.base_model.forward_lower(history, self.layer)[:, -1]

    def upper(self, controlled: Tensor) -> Any:
        self.controlled.append(controlled)
        history = torch.stack(self.controlled, 1)  # (B, t, W)
        output = self.base_model.forward_upper(history, self.layer)
        return SimpleNamespace(**{field.name: getattr(output, field.name)[:, -1]
                                  for field in dataclasses.fields(output) if field.name != "residuals"})


class InternalRLEnvironment:
    """The frozen base model + switching unit + decoder around a batched env (SPEC A§6)."""

    def __init__(self, base_model: BaseModel, metacontroller: Metacontroller, env_id: str,
                 num_envs: int, switch_threshold: float, controlled_layer: int | None = None,
                 greedy_actions: bool = False, env_kwargs: dict[str, Any] | None = None) -> None:
        self.base_model = freeze(base_model)
        self.metacontroller = freeze(metacontroller)
        self.layer = base_model.config.controlled_layer if controlled_layer is None else controlled_layer
        self.envs = make_vector_env(env_id, num_envs, **(env_kwargs or {}))
        self.num_envs = num_envs
        self.max_steps = episode_horizon(self.envs)
        self.switch_threshold = switch_threshold
        self.greedy_actions = greedy_actions
        space = self.envs.single_action_space
        self.action_bounds = (space.low, space.high) if isinstance(space, gym.spaces.Box) else None

    @torch.no_grad()
    def collect(
        self, policy: CodePolicy, seed: int, generator: torch.Generator, stepper: CachedStepper | None = None
    ) -> EpisodeBatch:
        """Run one synchronous episode per env with the current policy (Alg. 1–3).

        ``stepper`` computes the base model's timestep; the default uses the KV cache.
        """
        n, mc = self.num_envs, self.metacontroller
        stepper = stepper or CachedStepper(self.base_model, self.layer)
        obs, _ = self.envs.reset(seed=seed)
        stepper.reset(n, self.max_steps)
        history = torch.zeros(n, mc.config.history_size)  # h_{t-1}
        code = torch.zeros(n, mc.config.latent_dim)  # z_{t-1}, z_0 = 0
        policy_state = policy.initial_state(n)
        active = torch.ones(n, dtype=torch.bool)
        decision_residuals, decision_codes, decision_log_probs, decision_rows = [], [], [], []
        returns = torch.zeros(n)
        lengths = np.zeros(n, dtype=np.int64)
        std = policy.log_std.exp()
        for t in range(self.max_steps):
            residual = stepper.lower(torch.from_numpy(np.asarray(obs, dtype=np.float32)))  # (n, W), uncontrolled e_t
            if t == 0:
                acts = active.clone()
            else:
                beta = mc.switch_probability(residual, history, code)  # (n,)
                acts = active & (beta >= self.switch_threshold)
            history = mc.history_step(residual, history)
            if acts.any():
                rows = torch.nonzero(acts).squeeze(1)
                new_state, mean = policy.step(residual[rows], policy_state[rows])
                policy_state[rows] = new_state
                sampled = mean + std * torch.randn(mean.shape, generator=generator)
                decision_residuals.append(residual[rows])
                decision_codes.append(sampled)
                decision_log_probs.append(policy.log_prob(mean, sampled))
                decision_rows.append(rows)
                code[rows] = sampled
            controlled = mc.apply_controller(residual, code)
            step_output = stepper.upper(controlled)
            actions = self.base_model.select_action(step_output, generator, self.greedy_actions).numpy()
            if self.action_bounds is not None:
                actions = np.clip(actions, *self.action_bounds).astype(self.envs.single_action_space.dtype)
            obs, rewards, terminated, truncated, _ = self.envs.step(actions)
            ended = active.numpy() & (terminated | truncated)
            returns[torch.from_numpy(ended)] = torch.from_numpy(rewards[ended]).float()
            lengths[ended] = t + 1
            active &= ~torch.from_numpy(ended)
            if not active.any():
                break
        return _pack_decisions(n, decision_residuals, decision_codes, decision_log_probs, decision_rows, returns, lengths)


def _pack_decisions(n, residuals, codes, log_probs, rows, returns, lengths) -> EpisodeBatch:
    """Turn per-timestep decision lists into padded per-episode tensors."""
    rows = torch.cat(rows)  # (K,)
    order = torch.argsort(rows, stable=True)  # decisions grouped by episode, in time order
    rows = rows[order]
    counts = torch.bincount(rows, minlength=n)  # (n,)
    max_decisions = int(counts.max())
    starts = torch.cumsum(counts, 0) - counts
    position = torch.arange(len(rows)) - starts[rows]
    width, latent = residuals[0].shape[1], codes[0].shape[1]
    padded_residuals = torch.zeros(n, max_decisions, width)
    padded_codes = torch.zeros(n, max_decisions, latent)
    padded_log_probs = torch.zeros(n, max_decisions)
    mask = torch.zeros(n, max_decisions, dtype=torch.bool)
    padded_residuals[rows, position] = torch.cat(residuals)[order]
    padded_codes[rows, position] = torch.cat(codes)[order]
    padded_log_probs[rows, position] = torch.cat(log_probs)[order]
    mask[rows, position] = True
    return EpisodeBatch(padded_residuals, padded_codes, padded_log_probs, mask, returns, lengths)


def concatenate_batches(parts: list[EpisodeBatch]) -> EpisodeBatch:
    width = max(part.residuals.shape[1] for part in parts)

    def pad(tensor: Tensor) -> Tensor:
        extra = width - tensor.shape[1]
        return F.pad(tensor, (0, 0, 0, extra)) if tensor.dim() == 3 else F.pad(tensor, (0, extra))

    return EpisodeBatch(
        torch.cat([pad(p.residuals) for p in parts]), torch.cat([pad(p.codes) for p in parts]),
        torch.cat([pad(p.log_probs) for p in parts]), torch.cat([pad(p.decision_mask) for p in parts]),
        torch.cat([p.returns for p in parts]), np.concatenate([p.lengths for p in parts]),
    )


def ppo_update(policy: CodePolicy, optimizer: torch.optim.Optimizer, batch: EpisodeBatch, config: InternalRLConfig,
               generator: torch.Generator) -> dict[str, float]:
    """Epochs × minibatches of the clipped, critic-free update (SPEC A§6, §9.2 item 8)."""
    advantages = batch_normalised_advantage(batch.returns, config.advantage_eps)  # (N,)
    if float(batch.returns.std(unbiased=False)) == 0.0:
        return {"clip_fraction": 0.0, "approx_kl": 0.0, "zero_variance": 1.0}
    n = len(batch.returns)
    size = max(1, n // config.minibatches)
    clip_fractions, approx_kls = [], []
    for _ in range(config.epochs):
        permutation = torch.randperm(n, generator=generator)
        for start in range(0, n, size):
            index = permutation[start : start + size]
            new_log_probs = policy.sequence_log_prob(batch.residuals[index], batch.codes[index])
            loss, clip_fraction = clipped_surrogate_loss(
                new_log_probs, batch.log_probs[index], advantages[index], batch.decision_mask[index], config.clip_ratio
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                mask = batch.decision_mask[index]
                log_ratio = (new_log_probs - batch.log_probs[index])[mask]
                approx_kls.append(float(((log_ratio.exp() - 1) - log_ratio).mean()))
            clip_fractions.append(float(clip_fraction))
    return {"clip_fraction": float(np.mean(clip_fractions)), "approx_kl": float(np.mean(approx_kls)), "zero_variance": 0.0}


def train_internal_rl(
    config: InternalRLConfig,
    base_model: BaseModel,
    metacontroller: Metacontroller,
    run_dir: str | Path,
    *,
    stop_after_updates: int | None = None,
    progress: bool = True,
) -> Path:
    """The internal-RL loop: collect at β switches, batch-normalised return, clipped update.

    Returns the path of ``policy.pt`` (or ``latest.pt`` if stopped early); the learning curve
    is ``run_dir/learning_curve.csv``. Re-running resumes from ``latest.pt``. Every checkpoint
    records the config and the fingerprints of the base model and metacontroller it steers; a
    run directory made with other ones is refused, finished or not (:func:`check_same_inputs`).
    """
    set_threads(config.num_threads)
    run_dir = Path(run_dir)
    final_path, latest_path = run_dir / "policy.pt", run_dir / "latest.pt"
    config_dict = config.to_dict()
    inputs = {"base_model_fingerprint": module_fingerprint(base_model),
              "metacontroller_fingerprint": module_fingerprint(metacontroller)}
    if final_path.exists():
        record = load_checkpoint(final_path, expected_kind=INTERNAL_RL_KIND)
        check_same_config(final_path, record, config_dict, "InternalRLConfig", ADDED_CONFIG_FIELDS)
        check_same_inputs(final_path, record, inputs)
        return final_path
    torch.manual_seed(config.seed)
    policy = CodePolicy(base_model.config.width, metacontroller.config.latent_dim, config.policy_hidden,
                        config.initial_log_std)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    environment = InternalRLEnvironment(base_model, metacontroller, config.env_id, config.rollout_envs,
                                        config.switch_threshold, greedy_actions=config.greedy_actions,
                                        env_kwargs=config.env_kwargs)
    curve = CsvLog(run_dir / "learning_curve.csv", CURVE_FIELDS, step_field="update")
    update, episodes, env_steps, elapsed = 0, 0, 0, 0.0
    if latest_path.exists():
        record = load_checkpoint(latest_path, expected_kind=INTERNAL_RL_KIND)
        check_same_config(latest_path, record, config_dict, "InternalRLConfig", ADDED_CONFIG_FIELDS)
        check_same_inputs(latest_path, record, inputs)
        load_model_state(policy, record["model"], latest_path)
        optimizer.load_state_dict(record["optimizer"])
        set_generator_state(generator, record["generator"])
        update, episodes, env_steps, elapsed = record["step"], record["episodes"], record["env_steps"], record["elapsed_s"]
    curve.truncate_after(update)

    def checkpoint(path: Path) -> None:
        save_checkpoint(path, {
            "kind": INTERNAL_RL_KIND, "model": policy.state_dict(), "optimizer": optimizer.state_dict(),
            "step": update, "config": config_dict, "generator": generator_state(generator),
            "episodes": episodes, "env_steps": env_steps, "elapsed_s": elapsed, **inputs,
        })

    total_updates = config.total_episodes // config.batch_episodes
    end = total_updates if stop_after_updates is None else min(stop_after_updates, total_updates)
    chunks = config.batch_episodes // config.rollout_envs
    bar = tqdm(total=total_updates, initial=update, desc="internal RL", disable=not progress, dynamic_ncols=True)
    while update < end:
        tic = time.perf_counter()
        seed_base = config.seed * 1_000_003 + update * config.batch_episodes
        parts = [environment.collect(policy, seed_base + k * config.rollout_envs, generator) for k in range(chunks)]
        batch = concatenate_batches(parts)
        stats = ppo_update(policy, optimizer, batch, config, generator)
        update += 1
        episodes += len(batch.returns)
        env_steps += int(batch.lengths.sum())
        elapsed += time.perf_counter() - tic
        success = float(batch.returns.mean())
        curve.append({
            "update": update, "episodes": episodes, "env_steps": env_steps, "success_rate": success,
            "decisions_per_episode": float(batch.decision_mask.sum(1).float().mean()),
            "policy_std": float(policy.log_std.detach().exp().mean()), "elapsed_s": elapsed, **stats,
        })
        bar.update(1)
        bar.set_postfix(success=f"{success:.3f}", clip=f"{stats['clip_fraction']:.2f}")
        if update % config.checkpoint_every == 0 or update == end:
            checkpoint(latest_path)
    bar.close()
    if update < total_updates:
        return latest_path
    checkpoint(final_path)
    return final_path
