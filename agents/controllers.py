"""Ground-truth-label linear residual-stream controllers (SPEC A§4.2, Table A7; paper Fig. 4).

One low-rank controller per ground-truth subgoal ``g``, ``e ← e + A_g (B_gᵀ e)`` (rank 16),
inserted at one layer of the *frozen* base model and trained to maximise the log-likelihood
of the D* expert actions (λ = 0). The paper implements this as a metacontroller with β ≡ 1
and ``z = onehot(g)`` fed to the hypernetwork decoder (SPEC A§4.2 "Implementation"); a decoder
applied to a one-hot input is a lookup of per-subgoal outputs, so the factors are stored
directly as ``(K, W, r)`` parameters here (equivalent for the linear-output case, INFERRED).

Evaluation switches the controller by the ground-truth subgoal sequence on the unseen
post-training task ``HierGrid-v0`` (SPEC A§4.2 "Evaluation"); the env's ``info["subgoal"]``
is read by the evaluator only, never by a learning agent.

``A`` starts at zero so every controller starts as the identity; ``B`` uses the model's
variance-scaling initialiser.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from agents.models.controller import freeze, low_rank_control
from agents.models.transformer import CausalTransformer, sequence_loss, variance_scaling_
from agents.pretrain import batch_tensors
from agents.rollouts import RolloutStats, Steering, evaluate_policy
from agents.training_utils import check_positive_ints
from hier_envs.datasets import EpisodeDataset


@dataclass(frozen=True)
class ControllerConfig:
    """Ground-truth controller training (SPEC A§4.2, Table A7; presets SPEC B5)."""

    rank: int = 16
    """Rank r of each low-rank controller (Table A7)."""
    n_subgoals: int = 4
    """Number of abstract actions K (A, B, C, D)."""
    train_steps: int = 800
    """Optimiser steps (paper: 3,200)."""
    batch_size: int = 128
    """Episodes per batch (paper: 512)."""
    learning_rate: float = 1e-3
    """AdamW learning rate (Table A7)."""
    weight_decay: float = 0.03
    """AdamW weight decay (Table A7)."""
    seed: int = 0
    """Seeds initialisation and batch sampling."""

    def __post_init__(self) -> None:
        check_positive_ints(self, ("rank", "n_subgoals", "train_steps", "batch_size"))


CONTROLLER_PRESETS: dict[str, ControllerConfig] = {
    "smoke": ControllerConfig(train_steps=20, batch_size=16),
    "default": ControllerConfig(train_steps=800, batch_size=128),
    "paper": ControllerConfig(train_steps=3200, batch_size=512),
}


class SubgoalControllers(nn.Module):
    """``K`` low-rank controllers ``U_g = A_g B_gᵀ`` (SPEC A§4.2, Eq. 1)."""

    def __init__(self, width: int, n_subgoals: int, rank: int) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.zeros(n_subgoals, width, rank))  # (K, W, r)
        self.b = nn.Parameter(torch.empty(n_subgoals, width, rank))  # (K, W, r)
        for k in range(n_subgoals):
            variance_scaling_(self.b.data[k].T)

    def forward(self, residual: Tensor, subgoals: Tensor) -> Tensor:
        """Apply the controller of ``subgoals`` (``(...)`` long) to ``residual`` (``(..., W)``)."""
        if subgoals.min() < 0 or subgoals.max() >= self.a.shape[0]:
            raise ValueError(f"subgoal ids must be in [0, {self.a.shape[0]}), got {subgoals.unique().tolist()}")
        return low_rank_control(residual, self.a[subgoals], self.b[subgoals])


def train_subgoal_controllers(
    model: CausalTransformer,
    dataset: EpisodeDataset,
    layer: int,
    config: ControllerConfig,
    progress: bool = True,
) -> tuple[SubgoalControllers, list[float]]:
    """Fit the controllers at ``layer`` on D* with the base model frozen; returns them and the loss curve."""
    freeze(model)
    torch.manual_seed(config.seed)
    controllers = SubgoalControllers(model.config.width, config.n_subgoals, config.rank)
    optimizer = torch.optim.AdamW(controllers.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    rng = np.random.default_rng([config.seed, 23])
    losses: list[float] = []
    for _ in tqdm(range(config.train_steps), desc=f"controllers@{layer}", disable=not progress, leave=False):
        batch = batch_tensors(dataset, rng.integers(dataset.n_episodes, size=config.batch_size))
        with torch.no_grad():
            residual = model.forward_lower(batch["observations"], layer)  # (B, T, W)
        controlled = controllers(residual, batch["subgoals"].clamp(min=0))
        output = model.forward_upper(controlled, layer)
        loss = sequence_loss(output, batch["actions"], batch["next_observations"], batch["mask"], 0.0)["action_nll"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return controllers, losses


def ground_truth_steering(controllers: SubgoalControllers) -> Steering:
    """Steer with the controller of each env's current ground-truth subgoal (evaluation only)."""

    def steer(residual: Tensor, infos: dict[str, Any], t: int) -> Tensor:
        subgoals = torch.from_numpy(np.maximum(np.asarray(infos["subgoal"], dtype=np.int64), 0))  # (B,)
        with torch.no_grad():
            return controllers(residual, subgoals)

    return steer


def evaluate_subgoal_controllers(
    model: CausalTransformer,
    controllers: SubgoalControllers,
    layer: int,
    env_id: str = "HierGrid-v0",
    n_episodes: int = 1000,
    seed: int = 10_000,
) -> RolloutStats:
    """Success of the base model steered by ground-truth-switched controllers (SPEC A§4.2)."""
    return evaluate_policy(
        model, env_id, n_episodes, seed, steering_factory=lambda: ground_truth_steering(controllers), controlled_layer=layer
    )
