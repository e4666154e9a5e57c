"""Linear probes of the ground-truth subgoal in the residual stream (SPEC A§4.1, Table A6; Fig. 3).

For every layer ``l`` a probe ``p(g_t | e_{t,l}) = softmax(U_l e_{t,l} + c_l)`` is trained with
cross-entropy to decode the current subgoal ``g_t`` from the *instantaneous* residual vector.
The bias ``c_l`` is our addition, a deliberate DEVIATION: the paper's probe (Eq. 6–7, SPEC A§4.1)
is ``softmax(U_l e_{t,l})``. It lets a probe express the subgoals' unequal base rates without
finding them along a direction of the residual; it adds only ``K`` numbers per layer, so it
cannot decode more than the residual holds: on its own it reaches the majority-class rate, which
is the chance line the report shows.
All layers are probed at once: residuals are collected once with the frozen model and the
``L + 1`` probes are one batched linear map. Accuracy is measured on held-out episodes.

What the probe can reach is bounded by what the observations reveal: on the first step of an
episode the subgoal of a Table A1 task is a uniform guess among 4, and after each completed
pair among 2 (SPEC A§2.1). The paper reports about 30% at the input rising to about 50% at
mid-depth (SPEC A§4.1, APPROX).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from agents.models.base_models import BaseModel
from agents.pretrain import batch_tensors
from agents.training_utils import check_numbers, check_positive_ints
from hier_envs.datasets import EpisodeDataset


@dataclass(frozen=True)
class ProbeConfig:
    """Probe training (SPEC A§4.1, Table A6; presets SPEC B5)."""

    n_episodes: int = 3000
    """Episodes of the dataset whose residuals are probed."""
    val_fraction: float = 0.25
    """Fraction of those episodes held out for accuracy."""
    train_steps: int = 1500
    """Optimiser steps (paper: 8,000)."""
    batch_size: int = 512
    """Timesteps per batch (Table A6)."""
    learning_rate: float = 1e-3
    """AdamW learning rate (Table A6)."""
    n_subgoals: int = 4
    """Number of classes K."""
    seed: int = 0

    def __post_init__(self) -> None:
        check_numbers(self, {"val_fraction": "(0, 1)", "learning_rate": "> 0"})
        check_positive_ints(self, ("n_episodes", "train_steps", "batch_size", "n_subgoals"))


PROBE_PRESETS: dict[str, ProbeConfig] = {
    "smoke": ProbeConfig(n_episodes=100, train_steps=50, batch_size=128),
    "default": ProbeConfig(),
    "paper": ProbeConfig(n_episodes=10_000, train_steps=8000),
}


@torch.no_grad()
def collect_residuals(
    model: BaseModel, dataset: EpisodeDataset, indices: np.ndarray, chunk: int = 128
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Residuals at every layer for the valid steps of ``indices``.

    Returns ``residuals (L+1, N, W)``, ``subgoals (N,)`` and ``episode (N,)`` (position of the
    step's episode within ``indices``), with ``N`` the number of valid timesteps.
    """
    model.eval()
    residual_parts, subgoal_parts, episode_parts = [], [], []
    for start in range(0, len(indices), chunk):
        batch = batch_tensors(dataset, indices[start : start + chunk])
        residuals = model(batch["observations"], return_residuals=True).residuals  # L+1 × (B, T, W)
        mask = batch["mask"]  # (B, T)
        residual_parts.append(torch.stack([r[mask] for r in residuals]))  # (L+1, n, W)
        subgoal_parts.append(batch["subgoals"][mask])
        rows = torch.arange(start, start + mask.shape[0])[:, None].expand_as(mask)
        episode_parts.append(rows[mask])
    return torch.cat(residual_parts, 1), torch.cat(subgoal_parts), torch.cat(episode_parts)


def train_probes(
    residuals: torch.Tensor, subgoals: torch.Tensor, is_train: torch.Tensor, config: ProbeConfig
) -> dict[str, np.ndarray]:
    """Fit one linear probe per layer; returns per-layer ``train_accuracy`` and ``val_accuracy``."""
    n_layers, _, width = residuals.shape
    generator = torch.Generator().manual_seed(config.seed)
    weight = torch.zeros(n_layers, width, config.n_subgoals, requires_grad=True)  # (L+1, W, K)
    bias = torch.zeros(n_layers, 1, config.n_subgoals, requires_grad=True)  # (L+1, 1, K)
    optimizer = torch.optim.AdamW([weight, bias], lr=config.learning_rate, weight_decay=0.0)
    train_rows = torch.nonzero(is_train).squeeze(1)
    for _ in range(config.train_steps):
        rows = train_rows[torch.randint(len(train_rows), (config.batch_size,), generator=generator)]
        logits = torch.baddbmm(bias, residuals[:, rows], weight)  # (L+1, batch, K)
        loss = F.cross_entropy(logits.flatten(0, 1), subgoals[rows].repeat(n_layers))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        predictions = torch.baddbmm(bias, residuals, weight).argmax(-1)  # (L+1, N)
        correct = (predictions == subgoals[None]).float()
        return {
            "train_accuracy": correct[:, is_train].mean(1).numpy(),
            "val_accuracy": correct[:, ~is_train].mean(1).numpy(),
        }


def probe_model(model: BaseModel, dataset: EpisodeDataset, config: ProbeConfig) -> dict[str, np.ndarray]:
    """Per-layer held-out accuracy of linear subgoal probes for one base model."""
    rng = np.random.default_rng([config.seed, 31])
    n = min(config.n_episodes, dataset.n_episodes)
    indices = np.sort(rng.choice(dataset.n_episodes, size=n, replace=False))
    residuals, subgoals, episode = collect_residuals(model, dataset, indices)
    n_val = max(1, int(round(config.val_fraction * n)))
    is_train = episode >= n_val  # the first n_val episodes (random by construction) are held out
    result = train_probes(residuals, subgoals, is_train, config)
    result["chance_accuracy"] = np.full(residuals.shape[0], float(np.bincount(subgoals.numpy()).max() / len(subgoals)))
    return result
