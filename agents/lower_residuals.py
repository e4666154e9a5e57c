"""The frozen base model's residual stream at one layer, computed once per dataset.

The trainers that steer a *frozen* base model at layer ``l`` — ground-truth controllers (SPEC
A§4.2), the metacontroller (A§5) and the CompILE baseline — read ``e_{1:T,l}`` of every training
batch. With the lower blocks frozen and causal, an episode's residual is the same tensor at every
optimiser step, so recomputing it per batch is waste: on the grid `default` metacontroller it
is about a fifth of a step (1 thread: 0.360 s per step with the table against 0.452 s, after a
9.5 s build; ``results/lower_residuals_speed.json``, README "Pipeline"). :class:`LowerResiduals` computes it once, chunk by chunk, and
gathers padded batches from a flat ``(steps, W)`` table.

Where the table would exceed ``max_bytes`` (long ant datasets), it falls back to computing each
batch's residual on the fly, with the same call and the same result. Values equal the batched
``forward_lower`` up to float rounding (the padding of a batch never reaches a real step: the
lower blocks are causal), so training curves differ from the uncached ones only at that level.

The table is computed on the model's device and kept in CPU memory; a batch is gathered there
and returned on the model's device.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
from torch import Tensor

from agents.models.base_models import BaseModel
from agents.pretrain import batch_tensors
from agents.training_utils import model_device
from hier_envs.datasets import EpisodeDataset

DEFAULT_MAX_BYTES = 2 * 1024**3
"""Largest table kept in memory when ``max_bytes`` is None (2 GiB: the grid `default` D* is
0.16 GiB at width 128)."""


class LowerResiduals:
    """``e_{1:T,layer}`` of ``dataset``'s episodes under a frozen ``model``.

    ``model`` must be frozen (:func:`agents.models.controller.freeze`): a trainable one would make
    the table stale after the first optimiser step, and one left in training mode would bake one
    draw of its dropout into the table, so either raises ``ValueError``.
    """

    def __init__(self, model: BaseModel, dataset: EpisodeDataset, layer: int, *, chunk_steps: int = 16_384,
                 max_bytes: int | None = None) -> None:
        if any(parameter.requires_grad for parameter in model.parameters()):
            raise ValueError("LowerResiduals needs a frozen base model (freeze(model)); this one has trainable "
                             "parameters, so its residuals would change during training")
        if model.training:
            raise ValueError("LowerResiduals needs a frozen base model (freeze(model)); this one is in training "
                             "mode, so the table would hold one draw of its dropout")
        if isinstance(chunk_steps, bool) or not isinstance(chunk_steps, int) or chunk_steps < 1:
            raise ValueError(f"chunk_steps must be a positive int, got {chunk_steps!r}")
        max_bytes = DEFAULT_MAX_BYTES if max_bytes is None else max_bytes
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
            raise ValueError(f"max_bytes must be an int >= 0, got {max_bytes!r}")
        self.model, self.layer = model, layer
        lengths = dataset.episode_lengths
        self._starts = torch.from_numpy(dataset.step_starts.copy())  # table rows follow the dataset's step rows
        n_steps = dataset.n_steps
        self._pad_row = n_steps
        self.cached = (n_steps + 1) * model.config.width * 4 <= max_bytes
        if self.cached:
            # episodes per forward pass, so a pass holds at most chunk_steps padded steps
            chunk = max(1, chunk_steps // max(int(lengths.max()), 1))
            self._table = self._compute_table(dataset, n_steps, chunk)

    @torch.no_grad()
    def _compute_table(self, dataset: EpisodeDataset, n_steps: int, chunk: int) -> Tensor:
        """``(n_steps + 1, W)``: every real step in episode order, then one zero row for padding."""
        table = torch.zeros(n_steps + 1, self.model.config.width)
        device = model_device(self.model)
        order = np.argsort(dataset.episode_lengths, kind="stable")  # similar lengths per chunk: little padding
        for start in range(0, len(order), chunk):
            indices = order[start : start + chunk]
            batch = batch_tensors(dataset, indices)
            residual = self.model.forward_lower(batch["observations"].to(device), self.layer).cpu()  # (B, T, W)
            table[self._rows(indices, batch["mask"])[batch["mask"]]] = residual[batch["mask"]]
        return table

    def _rows(self, indices: np.ndarray, mask: Tensor) -> Tensor:
        """Table row of each ``(b, t)`` of a padded batch; padded steps point at the zero row."""
        rows = self._starts[torch.as_tensor(np.asarray(indices), dtype=torch.long)][:, None] + torch.arange(mask.shape[1])
        return torch.where(mask, rows, self._pad_row)

    def __call__(self, indices: np.ndarray, batch: Mapping[str, Tensor]) -> Tensor:
        """Residual ``(B, T, W)`` of the padded ``batch`` made by ``batch_tensors(dataset, indices)``;
        zero on padded steps when cached; on the model's device."""
        device = model_device(self.model)
        if not self.cached:
            with torch.no_grad():
                return self.model.forward_lower(batch["observations"].to(device), self.layer)
        if batch["mask"].shape[0] != len(indices):
            raise ValueError(f"batch has {batch['mask'].shape[0]} episodes but {len(indices)} indices were given")
        return self._table[self._rows(indices, batch["mask"].cpu())].to(device)
