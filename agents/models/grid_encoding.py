"""Input embeddings of the grid observation for the causal transformer (SPEC A§3.1, B4, B5).

The paper embeds the 637-bit observation with one linear map (``"flat"``). On 2 CPU cores and
with ~1/200 of the paper's token budget, a flat embedding did not learn subgoal-directed
navigation (the run in ``results/base_model_default`` before this module: held-out probes at
chance, 0/1000 ground-truth-controller successes). The reason is that "how far is colour ``c``
from me" is a *product* of two one-hot maps (the colour plane and the agent plane), which the
flat embedding leaves for the MLPs to discover over 49×49 cell pairs.

``"egocentric"`` is a fixed re-indexing of the same observation, with no new information and no
learned pre-processing: every non-agent plane is shifted so the agent sits in the centre of a
``(2G-1)×(2G-1)`` window, an extra plane marks window cells that lie off the grid, and the
agent's absolute cell is kept. The result is linearly embedded, as in the paper. The model
still conditions only on ``o_{1:t}`` and still predicts the same 637-bit next observation.
This is a documented deviation used by the ``default`` preset (README, "Deviations").

Shape key: N any leading dims flattened, P planes (13), C cells (G² = 49), V window cells
((2G-1)² = 169), W residual width.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["INPUT_ENCODINGS", "EgocentricGridEmbedding", "egocentric_index_table"]

INPUT_ENCODINGS = ("flat", "egocentric")
"""Values of ``TransformerConfig.input_encoding``."""


def egocentric_index_table(grid_size: int) -> Tensor:
    """``(C, V)`` long table: for agent cell ``a`` and window offset ``v``, the grid cell seen there.

    Offsets are row-major over ``dr, dc ∈ [-(G-1), G-1]``; a window cell off the grid maps to the
    sentinel index ``C`` (a zero column appended to every plane).
    """
    g = grid_size
    span = torch.arange(-(g - 1), g)  # (2G-1,)
    rows = torch.arange(g).repeat_interleave(g)  # (C,) agent row
    cols = torch.arange(g).repeat(g)  # (C,) agent col
    seen_row = rows[:, None, None] + span[None, :, None]  # (C, 2G-1, 1)
    seen_col = cols[:, None, None] + span[None, None, :]  # (C, 1, 2G-1)
    inside = (seen_row >= 0) & (seen_row < g) & (seen_col >= 0) & (seen_col < g)  # (C, 2G-1, 2G-1)
    index = torch.where(inside, seen_row * g + seen_col, torch.full_like(inside, g * g, dtype=torch.long))
    return index.reshape(g * g, (2 * g - 1) ** 2)


class EgocentricGridEmbedding(nn.Module):
    """Linear embedding of the agent-centred view of a one-hot grid observation (see module doc).

    The agent plane (the last one) is read with ``argmax``: it is one-hot in every observation
    the environments emit. Rows whose agent plane is all zero (right-padding in batches) embed
    as if the agent were at cell 0; they are masked out of every loss.
    """

    def __init__(self, obs_dim: int, grid_size: int, width: int) -> None:
        super().__init__()
        n_cells = grid_size * grid_size
        if obs_dim % n_cells != 0 or obs_dim // n_cells < 2:
            raise ValueError(f"obs_dim={obs_dim} is not a whole number (>= 2) of {grid_size}x{grid_size} planes")
        self.grid_size, self.n_cells = grid_size, n_cells
        self.n_planes = obs_dim // n_cells
        self.n_window = (2 * grid_size - 1) ** 2
        self.register_buffer("index", egocentric_index_table(grid_size), persistent=False)  # (C, V)
        self.register_buffer("off_grid", (self.index == n_cells).float(), persistent=False)  # (C, V)
        in_features = (self.n_planes - 1) * self.n_window + self.n_window + n_cells
        self.linear = nn.Linear(in_features, width)

    @property
    def weight(self) -> Tensor:
        return self.linear.weight

    def features(self, observations: Tensor) -> Tensor:
        """``(..., D)`` observations to the ``(..., F)`` egocentric one-hot features that are embedded."""
        lead = observations.shape[:-1]
        planes = observations.reshape(-1, self.n_planes, self.n_cells)  # (N, P, C)
        agent = planes[:, -1].argmax(dim=-1)  # (N,)
        padded = torch.cat([planes[:, :-1], planes.new_zeros(planes.shape[0], self.n_planes - 1, 1)], dim=-1)
        window_index = self.index[agent]  # (N, V)
        gather_index = window_index[:, None, :].expand(-1, self.n_planes - 1, -1)  # (N, P-1, V)
        ego = padded.gather(-1, gather_index)  # (N, P-1, V)
        parts = [ego.reshape(ego.shape[0], -1), self.off_grid[agent], planes[:, -1]]
        return torch.cat(parts, dim=-1).reshape(*lead, -1)  # (..., F)

    def forward(self, observations: Tensor) -> Tensor:
        return self.linear(self.features(observations))  # (..., W)
