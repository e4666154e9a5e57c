"""What the two base-model families share (SPEC A§3.4, B4): config dicts, argument checks, the
controller hook, and the layer loops of ``forward`` / ``forward_lower`` / ``forward_upper`` and of
the two-half incremental step ``step_lower`` → controller → ``step_upper``.

:class:`~agents.models.transformer.CausalTransformer` and :class:`~agents.models.hawk.HawkSSM`
differ in their embedding, blocks, inference state and heads; they supply those through the
hooks below (``_embed``, ``_sequence_context`` / ``_run_block``, ``_step_context`` /
``_step_block``, ``_heads`` and the two output classes), and everything else is the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from numbers import Real
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["ConfigDict", "Controller", "InferenceState", "ResidualStreamModel", "check_real_numbers"]

Controller = Callable[[Tensor], Tensor]
"""Maps the residual at the controlled layer to its rewritten value, same shape."""


def check_real_numbers(config: object, names: tuple[str, ...]) -> None:
    """``TypeError`` naming ``<ConfigClass>.<field>`` for the first of ``names`` that is not a real number.

    Run before a field's range check, whose comparison would otherwise fail on a ``str`` with an
    error that names no field; a ``bool`` is refused too (``True`` would pass as 1).
    """
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, Real):
            raise TypeError(
                f"{type(config).__name__}.{name} must be a real number, got {type(value).__name__} {value!r}"
            )


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


class InferenceState:
    """Row bookkeeping of a batched incremental-inference state (a KV cache or a recurrent state).

    Subclasses are dataclasses with the per-block tensors plus ``lengths`` (``(B,)`` long, the
    timesteps each row has completed in its current episode), ``pending_layer`` (layer reached by
    a ``step_lower`` whose ``step_upper`` has not run) and ``pending_context`` (what both halves
    of that step share). ``_clear_rows`` resets the per-block tensors of restarted rows.
    """

    lengths: Tensor
    pending_layer: int | None
    pending_context: Any

    @property
    def batch_size(self) -> int:
        return self.lengths.shape[0]

    def _clear_rows(self, mask: Tensor) -> None:
        """Reset the per-block tensors of the rows in ``mask``; nothing by default."""

    def reset_rows(self, mask: Tensor) -> None:
        """Start a new, empty episode in the rows where ``mask`` (``(B,)`` bool) is true; other
        rows continue unchanged."""
        if self.pending_layer is not None:
            raise RuntimeError("reset_rows called between step_lower and step_upper; finish the step first")
        mask = torch.as_tensor(mask, device=self.lengths.device)
        if mask.dtype != torch.bool or mask.shape != self.lengths.shape:
            raise ValueError(
                f"reset_rows expects a bool mask of shape {tuple(self.lengths.shape)}, got "
                f"dtype {mask.dtype} shape {tuple(mask.shape)}"
            )
        self.lengths.masked_fill_(mask, 0)
        self._clear_rows(mask)

    def reset(self) -> None:
        """Reset every row."""
        self.reset_rows(torch.ones_like(self.lengths, dtype=torch.bool))


class ResidualStreamModel(nn.Module):
    """Base of the sequence models: ``config.obs_dim``, ``n_layers`` blocks and a controller at
    one layer (SPEC A§3.4), run over whole sequences or one timestep at a time.

    Subclasses define ``blocks``, the output classes and the hooks. The inference state (a KV
    cache or a recurrent state) needs ``batch_size``, ``lengths`` (``(B,)`` completed timesteps)
    and the ``pending_layer`` / ``pending_context`` fields of a step split in two halves.
    """

    config: Any
    OUTPUT: type
    """Full-sequence output class, built as ``OUTPUT(*heads, residuals)``."""
    STEP_OUTPUT: type
    """One-timestep output class, built as ``STEP_OUTPUT(*heads)``."""

    # -- hooks --------------------------------------------------------------------------------

    def _embed(self, observations: Tensor) -> Tensor:
        """``(..., D)`` observations → ``(..., W)`` residual at layer 0."""
        raise NotImplementedError

    def _heads(self, residual: Tensor) -> tuple[Tensor, ...]:
        """Final residual → the output fields before ``residuals``."""
        raise NotImplementedError

    def _sequence_context(self, length: int) -> Any:
        """What every block needs to run a full sequence of ``length`` steps (e.g. a causal mask)."""
        raise NotImplementedError

    def _run_block(self, depth: int, x: Tensor, context: Any) -> Tensor:
        """Block ``depth`` (0-based) on a ``(B, T, W)`` sequence."""
        raise NotImplementedError

    def _step_context(self, state: Any) -> Any:
        """What every block needs for the next timestep of ``state``; computed once in
        ``step_lower`` and reused by ``step_upper``. May raise if ``state`` is full."""
        raise NotImplementedError

    def _step_block(self, depth: int, x: Tensor, state: Any, context: Any) -> Tensor:
        """Block ``depth`` on one ``(B, W)`` timestep, advancing its part of ``state``."""
        raise NotImplementedError

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

    # -- full sequences -----------------------------------------------------------------------

    def forward(
        self,
        observations: Tensor,
        controller: Controller | None = None,
        controlled_layer: int | None = None,
        return_residuals: bool = False,
    ) -> Any:
        """Run whole sequences, optionally rewriting the residual at one layer.

        Args:
            observations: ``(B, T, D)`` float observations ``o_{1:T}``, each row from its episode's
                first step. Rows of different lengths are right-padded; causality keeps padding
                out of earlier timesteps.
            controller: maps the ``(B, T, W)`` residual at ``controlled_layer`` to its
                controlled value (SPEC A§5.1 item 7); ``None`` runs the plain model.
            controlled_layer: layer in ``0..L``; defaults to ``config.controlled_layer``.
            return_residuals: also return the residual at every layer ``0..L``.

        Returns:
            ``OUTPUT``. The recorded residual at the controlled layer is the *uncontrolled*
            value; the blocks above receive ``controller(e)``.
        """
        self._check_observations(observations, 3)
        layer = self._check_layer(
            "controlled_layer", self.config.controlled_layer if controlled_layer is None else controlled_layer
        )
        context = self._sequence_context(observations.shape[1])
        x = self._embed(observations)  # (B, T, W)
        residuals: list[Tensor] | None = [] if return_residuals else None
        for depth in range(self.n_layers + 1):
            if depth > 0:
                x = self._run_block(depth - 1, x, context)  # (B, T, W)
            if residuals is not None:
                residuals.append(x)
            if controller is not None and depth == layer:
                x = self._apply_controller(controller, x)  # (B, T, W)
        return self.OUTPUT(*self._heads(x), residuals)

    def forward_lower(self, observations: Tensor, upto_layer: int) -> Tensor:
        """Residual ``e_{1:T, upto_layer}`` only, ``(B, T, W)``: embed and blocks ``1..upto_layer``.

        With :meth:`forward_upper` this splits :meth:`forward` at a layer, e.g. to compute the
        frozen lower half once and train a controller through the upper half.
        """
        self._check_observations(observations, 3)
        self._check_layer("upto_layer", upto_layer)
        context = self._sequence_context(observations.shape[1])
        x = self._embed(observations)  # (B, T, W)
        for depth in range(upto_layer):
            x = self._run_block(depth, x, context)  # (B, T, W)
        return x

    def forward_upper(self, residual: Tensor, from_layer: int) -> Any:
        """Blocks ``from_layer+1..L`` and the heads on a (possibly controlled) ``(B, T, W)`` residual."""
        self._check_layer("from_layer", from_layer)
        if residual.dim() != 3 or residual.shape[-1] != self.config.width:
            raise ValueError(f"residual must be (B, T, W={self.config.width}), got {tuple(residual.shape)}")
        context = self._sequence_context(residual.shape[1])
        x = residual
        for depth in range(from_layer, self.n_layers):
            x = self._run_block(depth, x, context)  # (B, T, W)
        return self.OUTPUT(*self._heads(x), None)

    # -- incremental inference ----------------------------------------------------------------

    @torch.no_grad()
    def step_lower(self, obs_t: Tensor, state: Any, upto_layer: int) -> Tensor:
        """Embed ``o_t`` and run blocks ``1..upto_layer`` for one timestep (SPEC §9.2 item 9).

        Advances those blocks' part of ``state`` and returns the uncontrolled residual
        ``e_{t, upto_layer}`` of shape ``(B, W)``. Must be followed by :meth:`step_upper` with
        ``from_layer=upto_layer``. Runs without autograd (rollouts only).
        """
        self._check_observations(obs_t, 2)
        self._check_layer("upto_layer", upto_layer)
        if obs_t.shape[0] != state.batch_size:
            raise ValueError(f"obs_t has batch {obs_t.shape[0]} but the inference state has {state.batch_size} rows")
        if state.pending_layer is not None:
            raise RuntimeError(f"step_lower called twice; step_upper(from_layer={state.pending_layer}) is pending")
        context = self._step_context(state)
        x = self._embed(obs_t)  # (B, W)
        for depth in range(upto_layer):
            x = self._step_block(depth, x, state, context)  # (B, W)
        state.pending_layer, state.pending_context = upto_layer, context
        return x

    @torch.no_grad()
    def step_upper(self, residual: Tensor, state: Any, from_layer: int) -> Any:
        """Run blocks ``from_layer+1..L`` and the heads on ``(B, W)``, then advance ``state``.

        ``residual`` is the (possibly controlled) ``e_{t, from_layer}``; the upper blocks' state
        keeps what it produces, so later steps see the controlled past (SPEC §9.2 item 9).
        """
        self._check_layer("from_layer", from_layer)
        if state.pending_layer != from_layer:
            raise RuntimeError(
                f"step_upper(from_layer={from_layer}) needs a preceding step_lower(upto_layer={from_layer}); "
                f"pending layer is {state.pending_layer}"
            )
        if residual.shape != (state.batch_size, self.config.width):
            raise ValueError(f"residual must be (B={state.batch_size}, W={self.config.width}), got {tuple(residual.shape)}")
        x = residual
        for depth in range(from_layer, self.n_layers):
            x = self._step_block(depth, x, state, state.pending_context)  # (B, W)
        state.lengths += 1
        state.pending_layer, state.pending_context = None, None
        return self.STEP_OUTPUT(*self._heads(x))

    def step(self, obs_t: Tensor, state: Any, controller: Controller | None = None,
             controlled_layer: int | None = None) -> Any:
        """One full timestep: lower blocks, optional ``controller`` on ``(B, W)``, upper blocks."""
        layer = self.config.controlled_layer if controlled_layer is None else controlled_layer
        residual = self.step_lower(obs_t, state, layer)
        if controller is not None:
            residual = self._apply_controller(controller, residual)
        return self.step_upper(residual, state, layer)
