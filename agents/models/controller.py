"""Residual-stream controllers and freezing the base model (SPEC A§4.2, A§5.1 items 6-7, §9.2).

A linear residual-stream controller rewrites the activation at the controlled layer as
``e <- e + U e`` (SPEC A§4.2 Eq. 1, A§5.1 item 7). Two parameterisations of ``U`` are used:

- grid: low rank, ``U = A Bᵀ`` with ``A, B`` of shape ``(W, r)``, r = 16 (Tables A7, A9);
- ant: full linear, ``U`` of shape ``(W, W)`` (Tables A8, A10).

``U e`` is a matrix-vector product. The low-rank form is evaluated as ``A (Bᵀ e)`` and never
builds a ``W × W`` matrix; a per-dimension gain ``e ⊙ rowsum(U)`` is *wrong* (SPEC §9.2 item 1).

Shape key:
    ...  any leading batch dimensions (broadcast between arguments)
    W    residual width n_e
    r    controller rank
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from agents.models.transformer import variance_scaling_

__all__ = ["CONTROLLER_KINDS", "ControllerHypernetwork", "freeze", "full_linear_control", "low_rank_control",
           "variance_scaled_mlp"]

CONTROLLER_KINDS = ("low_rank", "linear")
"""Controller families of :class:`ControllerHypernetwork`: low rank ``A Bᵀ`` (grid) or full ``U`` (ant)."""


def _check_width(name: str, matrix: Tensor, residual: Tensor) -> None:
    if matrix.dim() < 2:
        raise ValueError(f"{name} must have at least 2 dims (..., W, *), got shape {tuple(matrix.shape)}")
    if matrix.shape[-2] != residual.shape[-1]:
        raise ValueError(
            f"{name} has shape {tuple(matrix.shape)}; its second-to-last dim must equal the "
            f"residual width {residual.shape[-1]}"
        )


def low_rank_control(residual: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """Low-rank linear controller ``e + A (Bᵀ e)`` (SPEC A§5.1 items 6-7, §9.2 item 1).

    Args:
        residual: ``e``, shape ``(..., W)``.
        a: ``A``, shape ``(..., W, r)``; leading dims broadcast against ``residual``'s.
        b: ``B``, shape ``(..., W, r)``.

    Returns:
        The controlled residual ``e + A Bᵀ e``, shape ``(..., W)``. Cost O(W r), no ``W × W``
        matrix is formed.
    """
    _check_width("a", a, residual)
    _check_width("b", b, residual)
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"a and b must have the same rank, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    coefficients = torch.matmul(b.transpose(-1, -2), residual.unsqueeze(-1))  # (..., r, 1)
    update = torch.matmul(a, coefficients).squeeze(-1)  # (..., W)
    return residual + update  # (..., W)


def full_linear_control(residual: Tensor, u: Tensor) -> Tensor:
    """Full linear controller ``e + U e`` (SPEC A§4.2 Eq. 1; ant Tables A8/A10).

    Args:
        residual: ``e``, shape ``(..., W)``.
        u: ``U``, shape ``(..., W, W)``; leading dims broadcast against ``residual``'s.

    Returns:
        ``e + U e``, shape ``(..., W)``.
    """
    _check_width("u", u, residual)
    if u.shape[-1] != residual.shape[-1]:
        raise ValueError(f"u must be square (..., W, W) with W={residual.shape[-1]}, got {tuple(u.shape)}")
    return residual + torch.matmul(u, residual.unsqueeze(-1)).squeeze(-1)  # (..., W)


def variance_scaled_mlp(n_in: int, n_hidden: int, n_out: int, init_scale: float) -> nn.Sequential:
    """``Linear -> ReLU -> Linear`` with variance-scaled weights and zero biases (the one-hidden-
    layer MLPs of the metacontroller and of CompILE, SPEC A§5.1, A§7.1 item 2)."""
    layers = nn.Sequential(nn.Linear(n_in, n_hidden), nn.ReLU(), nn.Linear(n_hidden, n_out))
    for layer in layers:
        if isinstance(layer, nn.Linear):
            variance_scaling_(layer.weight, init_scale)
            nn.init.zeros_(layer.bias)
    return layers


class ControllerHypernetwork(nn.Sequential):
    """Hypernetwork decoder ``f_hyp``: code ``z`` -> controller ``U(z)`` (SPEC A§5.1 items 6-7, Eq. 18).

    One hidden layer; it emits ``(A, B)`` of a low-rank ``U = A Bᵀ`` (grid) or a full ``U``
    (ant). Shared by the metacontroller and the CompILE baseline, so that both steer the base
    model through the same controller family. A ``Sequential`` so that parameter names
    (``0.weight``, ``2.weight``) are those of a plain MLP.
    """

    def __init__(self, latent_dim: int, hidden: int, width: int, controller: Literal["low_rank", "linear"],
                 rank: int, init_scale: float) -> None:
        if controller not in CONTROLLER_KINDS:  # any other name used to build a full W × W decoder silently
            raise ValueError(f"controller must be one of {CONTROLLER_KINDS}, got {controller!r}")
        n_out = 2 * width * rank if controller == "low_rank" else width * width
        super().__init__(*variance_scaled_mlp(latent_dim, hidden, n_out, init_scale))
        self.width, self.controller, self.rank = width, controller, rank

    def decode(self, z: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        """Controller parameters for codes ``(..., Z)``: ``(A, B)`` of ``(..., W, r)``, or ``U (..., W, W)``."""
        out = self(z)
        if self.controller == "low_rank":
            a, b = out.chunk(2, -1)
            shape = (*z.shape[:-1], self.width, self.rank)
            return a.reshape(shape), b.reshape(shape)
        return out.reshape(*z.shape[:-1], self.width, self.width)

    def control(self, residual: Tensor, z: Tensor) -> Tensor:
        """``ê = e + U(z) e`` (Eq. 11) for matching leading dims."""
        params = self.decode(z)
        if self.controller == "low_rank":
            return low_rank_control(residual, *params)
        return full_linear_control(residual, params)


def freeze(model: nn.Module) -> nn.Module:
    """Freeze a module for use as a fixed part of the environment (SPEC §9.2 item 7).

    Puts it in eval mode (no dropout) and sets ``requires_grad_(False)`` on every parameter, so
    an optimiser built from ``filter(lambda p: p.requires_grad, ...)`` never holds it. Note that
    a later ``.train()`` on a parent module would switch it back to training mode; call
    ``freeze`` again after such calls. Returns the same module for chaining.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"freeze expects an nn.Module, got {type(model).__name__}")
    model.eval()
    model.requires_grad_(False)
    return model
