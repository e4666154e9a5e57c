"""What the two base-model families share (SPEC A§3.4, B4): config dicts, argument checks, the
controller hook and the one-step composition ``step_lower`` → controller → ``step_upper``.

:class:`~agents.models.transformer.CausalTransformer` and :class:`~agents.models.hawk.HawkSSM`
differ in their blocks, caches and heads; everything below is the same for both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor, nn

__all__ = ["ConfigDict", "Controller", "ResidualStreamModel"]

Controller = Callable[[Tensor], Tensor]
"""Maps the residual at the controlled layer to its rewritten value, same shape."""


class ConfigDict:
    """``to_dict`` / ``from_dict`` for a frozen model-config dataclass (checkpoints and JSON)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields, for checkpoints and JSON."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Any:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        known = {field.name for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys {unknown}")
        return cls(**dict(values))


class ResidualStreamModel(nn.Module):
    """Base of the sequence models: ``config.obs_dim``, ``n_layers`` blocks, a controller at one
    layer (SPEC A§3.4), and ``step_lower`` / ``step_upper`` defined by the subclass."""

    config: Any

    @property
    def n_layers(self) -> int:
        return self.config.n_layers

    def _check_layer(self, name: str, layer: int) -> int:
        if not isinstance(layer, int) or isinstance(layer, bool):
            raise TypeError(f"{name} must be an int, got {type(layer).__name__}")
        if not 0 <= layer <= self.n_layers:
            raise ValueError(f"{name}={layer} is out of range [0, {self.n_layers}]")
        return layer

    def _check_observations(self, observations: Tensor, n_dims: int) -> None:
        if not isinstance(observations, Tensor):
            raise TypeError(f"observations must be a torch.Tensor, got {type(observations).__name__}")
        if observations.dim() != n_dims or observations.shape[-1] != self.config.obs_dim:
            expected = "(B, T, D)" if n_dims == 3 else "(B, D)"
            raise ValueError(
                f"observations must have shape {expected} with D={self.config.obs_dim}, got {tuple(observations.shape)}"
            )

    @staticmethod
    def _apply_controller(controller: Controller, residual: Tensor) -> Tensor:
        controlled = controller(residual)
        if not isinstance(controlled, Tensor) or controlled.shape != residual.shape:
            shape = tuple(controlled.shape) if isinstance(controlled, Tensor) else type(controlled).__name__
            raise ValueError(f"controller must return a tensor of shape {tuple(residual.shape)}, got {shape}")
        return controlled

    def step(self, obs_t: Tensor, state: Any, controller: Controller | None = None,
             controlled_layer: int | None = None) -> Any:
        """One full timestep: lower blocks, optional ``controller`` on ``(B, W)``, upper blocks."""
        layer = self.config.controlled_layer if controlled_layer is None else controlled_layer
        residual = self.step_lower(obs_t, state, layer)  # type: ignore[attr-defined]
        if controller is not None:
            residual = self._apply_controller(controller, residual)
        return self.step_upper(residual, state, layer)  # type: ignore[attr-defined]
