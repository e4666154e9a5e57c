"""Do the metacontroller's switches line up with subgoal boundaries? (SPEC A§5.4, Fig. 6/A3).

β_t is thresholded at :data:`SWITCH_THRESHOLD` (0.5). A ground-truth boundary is a step ``t > 0``
whose subgoal label differs from step ``t − 1``'s (the first observation after a colour pair
is completed). The forced switch at ``t = 0`` is excluded from both sides. A switch matches a
boundary within ``±tolerance`` steps, each used at most once (greedy in time order); precision,
recall and F1 are pooled over episodes. The codes are the encoder means (no sampling).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from agents.metacontroller import SWITCH_THRESHOLD, Metacontroller
from agents.models.base_models import BaseModel
from agents.pretrain import batch_tensors
from hier_envs.datasets import EpisodeDataset


def match_events(predicted: np.ndarray, actual: np.ndarray, tolerance: int) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) of event times within ``tolerance``
    (an int >= 0, in steps; anything else raises ``ValueError``: a negative one matches nothing)."""
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, np.integer)) or tolerance < 0:
        raise ValueError(f"tolerance must be an int >= 0 (steps), got {tolerance!r}")
    unmatched = list(actual)
    true_positives = 0
    for time in predicted:
        for index, target in enumerate(unmatched):
            if abs(int(time) - int(target)) <= tolerance:
                true_positives += 1
                del unmatched[index]
                break
    return true_positives, len(predicted) - true_positives, len(unmatched)


def boundaries(subgoals: np.ndarray) -> np.ndarray:
    """Steps ``t > 0`` where the ground-truth subgoal changes."""
    return np.flatnonzero(subgoals[1:] != subgoals[:-1]) + 1


@torch.no_grad()
def collect_betas(
    base_model: BaseModel,
    metacontroller: Metacontroller,
    dataset: EpisodeDataset,
    indices: np.ndarray,
    controlled_layer: int,
    chunk: int = 256,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(beta (T,), subgoals (T,))`` per episode, with mean codes."""
    metacontroller.eval()
    episodes = []
    for start in range(0, len(indices), chunk):
        batch = batch_tensors(dataset, indices[start : start + chunk])
        residual = base_model.forward_lower(batch["observations"], controlled_layer)
        beta = metacontroller(residual, batch["mask"], sample=False).beta.numpy()
        lengths = batch["mask"].sum(1).numpy()
        subgoals = batch["subgoals"].numpy()
        for row, length in enumerate(lengths):
            episodes.append((beta[row, :length], subgoals[row, :length]))
    return episodes


def switching_scores(episodes: list[tuple[np.ndarray, np.ndarray]], tolerance: int = 1) -> dict[str, Any]:
    """Precision, recall, F1, switches per episode and a β histogram (excluding the forced t = 0).

    Also the mean β at the true boundaries and at the other steps, and the switches one step after
    another switch (a boundary marked twice), which say where the precision goes.
    """
    totals = np.zeros(3, dtype=np.int64)
    switch_counts, boundary_counts, all_betas, at_boundaries, elsewhere = [], [], [], [], []
    consecutive = 0
    for beta, subgoals in episodes:
        switches = np.flatnonzero(beta[1:] >= SWITCH_THRESHOLD) + 1
        actual = boundaries(subgoals)
        totals += match_events(switches, actual, tolerance)
        switch_counts.append(len(switches))
        boundary_counts.append(len(actual))
        all_betas.append(beta[1:])
        is_boundary = np.zeros(len(beta), dtype=bool)
        is_boundary[actual] = True
        at_boundaries.append(beta[is_boundary])
        elsewhere.append(beta[1:][~is_boundary[1:]])
        consecutive += int(np.sum(np.diff(switches) == 1))
    true_positives, false_positives, false_negatives = totals.tolist()
    precision = true_positives / max(true_positives + false_positives, 1)
    recall = true_positives / max(true_positives + false_negatives, 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    betas = np.concatenate(all_betas) if all_betas else np.zeros(0)
    histogram, edges = np.histogram(betas, bins=20, range=(0.0, 1.0))
    at_boundaries = np.concatenate(at_boundaries) if at_boundaries else np.zeros(0)
    elsewhere = np.concatenate(elsewhere) if elsewhere else np.zeros(0)
    n_episodes = max(len(episodes), 1)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "tolerance": tolerance,
        "episodes": len(episodes),
        "switches_per_episode": float(np.mean(switch_counts)) if switch_counts else 0.0,
        "boundaries_per_episode": float(np.mean(boundary_counts)) if boundary_counts else 0.0,
        "beta_histogram": histogram.tolist(),
        "beta_histogram_edges": edges.tolist(),
        "fraction_beta_extreme": float(np.mean((betas < 0.05) | (betas > 0.95))) if len(betas) else 0.0,
        "beta_mean_at_boundaries": float(at_boundaries.mean()) if len(at_boundaries) else float("nan"),
        "beta_mean_elsewhere": float(elsewhere.mean()) if len(elsewhere) else float("nan"),
        "unmatched_switches_per_episode": false_positives / n_episodes,
        "consecutive_switches_per_episode": consecutive / n_episodes,
    }


def plot_switching(episodes: list[tuple[np.ndarray, np.ndarray]], scores: dict[str, Any], path: Any, n_strips: int = 4) -> None:
    """β_t strips for a few episodes with the true boundaries marked, and the β histogram."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(n_strips + 1, 1, figsize=(7, 1.3 * (n_strips + 1) + 1))
    for axis, (beta, subgoals) in zip(axes[:n_strips], episodes[:n_strips]):
        axis.plot(beta, color="tab:blue", drawstyle="steps-mid", label="β_t")
        for boundary in boundaries(subgoals):
            axis.axvline(boundary, color="tab:red", linestyle="--", linewidth=1)
        axis.axhline(SWITCH_THRESHOLD, color="grey", linestyle=":", linewidth=0.8)
        axis.set(ylim=(-0.05, 1.05), ylabel="β")
    axes[0].set_title(f"β_t (blue) vs subgoal boundaries (red); F1 = {scores['f1']:.3f} (±{scores['tolerance']})")
    axes[n_strips - 1].set_xlabel("timestep")
    edges = np.asarray(scores["beta_histogram_edges"])
    axes[-1].bar(edges[:-1], scores["beta_histogram"], width=np.diff(edges), align="edge", color="tab:blue")
    axes[-1].set(yscale="log", xlabel="β (t > 0)", ylabel="count")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
