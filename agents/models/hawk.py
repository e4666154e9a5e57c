"""Hawk (RG-LRU) recurrent base model for the ant (SPEC A§3.1, A§3.3, A§3.4, B4, §9.2 item 14).

Hawk is the purely recurrent member of the Griffin family (De et al. 2024): residual blocks
whose temporal-mixing layer is a gated linear recurrence, the Real-Gated Linear Recurrent
Unit (RG-LRU). As for the grid transformer, there is one token per timestep whose input is
the observation ``o_t`` (actions are never fed back, SPEC §9.2 item 11), and two heads read
the final residual: the next action ``a_t`` and the next observation ``o_{t+1}``, both
diagonal Gaussians with learned (state-dependent) standard deviations.

Architecture (Table A5 with A15, Griffin's recurrent block, INFERRED where the paper is silent):

- input embedding ``Linear(D -> W)``; no position embedding (the recurrence orders time);
- ``L`` pre-norm residual blocks: ``x + Recurrent(RMSNorm(x))`` then ``x + MLP(RMSNorm(x))``
  with a ReLU MLP (the paper's; Griffin uses a gated GeLU);
- the recurrent block (Griffin Fig. 2): a GeLU gate branch ``y = gelu(W_y x)``; a recurrent
  branch ``u = W_x x`` → depthwise causal Conv1D (width 4) → RG-LRU; out ``W_o (rglru ⊙ y)``;
- RG-LRU on the ``R``-wide branch, with block-diagonal gate matrices (one block per head,
  the paper's "8 heads")::

      r_t = σ(W_a u_t + b_a)                  recurrence gate
      i_t = σ(W_i u_t + b_i)                  input gate
      log a_t = -c · r_t · softplus(Λ)        i.e. a_t = σ'(Λ)^{c r_t} with c = 8
      h_t = a_t ⊙ h_{t-1} + √(1 - a_t²) ⊙ (i_t ⊙ u_t)

  ``Λ`` is initialised so that ``a = exp(-softplus(Λ))`` has ``a²`` uniform in
  ``[0.9², 0.999²]`` (Griffin). At the first step of an episode the input multiplier is 1 (the
  state is reset, as recurrentgemma does at segment position 0). The state ``h`` is always kept
  in float32, whatever the parameter dtype.

Residual-stream conventions match the transformer (SPEC A§3.4): layer 0 is the embedding, layer
``l`` the residual after block ``l``; a controller at layer ``l`` rewrites ``e_{t,l}`` before
blocks ``l+1..L`` and the blocks below never see it (SPEC §9.2 item 9).

Incremental inference keeps, per block, the last ``conv_width - 1`` conv inputs and the RG-LRU
state; one step (:meth:`HawkSSM.step_lower` then :meth:`HawkSSM.step_upper`) equals the full
scan to 1e-5 (``tests/test_hawk.py``). Rows of the batch are reset independently when their
environment starts a new episode.

Shape key:
    B  batch size (sequences or parallel environments)
    T  sequence length (timesteps)
    D  observation size (41 for HierAnt)
    A  action size (8 torques)
    W  residual width n_e
    R  RG-LRU width, H heads of size R / H
    M  MLP hidden size
    K  conv width
    L  number of blocks
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from agents.models.residual_stream import ConfigDict, InferenceState, ResidualStreamModel, check_real_numbers
from agents.models.transformer import variance_scaling_

__all__ = [
    "HAWK_PRESETS",
    "HawkConfig",
    "HawkOutput",
    "HawkSSM",
    "HawkState",
    "HawkStepOutput",
    "gaussian_sequence_loss",
    "rg_lru_scan",
    "sqrt_bound_derivative",
]

LOG_STD_MIN = -5.0
"""Lower bound of every predicted log standard deviation (soft, via a sigmoid)."""
LOG_STD_MAX = 2.0
"""Upper bound of every predicted log standard deviation (soft, via a sigmoid)."""
_LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class HawkConfig(ConfigDict):
    """Sizes of the ant Hawk SSM (SPEC A§3.3, Tables A5/A15; presets SPEC B5)."""

    obs_dim: int = 41
    """Observation size D (HierAnt: 41, SPEC B2)."""
    action_dim: int = 8
    """Action size A (8 joint torques)."""
    width: int = 256
    """Residual width n_e (paper: 256)."""
    lru_width: int = 256
    """RG-LRU width R (paper: 256)."""
    n_layers: int = 8
    """Number of residual blocks L (paper: 8)."""
    n_heads: int = 8
    """Blocks of the block-diagonal RG-LRU gates (paper: 8 heads); must divide ``lru_width``."""
    mlp_hidden: int = 512
    """Hidden size of the ReLU MLP (paper: 512)."""
    conv_width: int = 4
    """Width of the depthwise causal Conv1D before the RG-LRU (Griffin: 4)."""
    gate_exponent: float = 8.0
    """The constant c in ``a_t = a^{c r_t}`` (Griffin: 8)."""
    min_radius: float = 0.9
    """Smallest initial recurrence ``a`` (Griffin: 0.9)."""
    max_radius: float = 0.999
    """Largest initial recurrence ``a`` (Griffin: 0.999)."""

    def __post_init__(self) -> None:
        for name in ("obs_dim", "action_dim", "width", "lru_width", "n_layers", "n_heads", "mlp_hidden", "conv_width"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"HawkConfig.{name} must be a positive int, got {value!r}")
        if self.lru_width % self.n_heads != 0:
            raise ValueError(f"HawkConfig.lru_width={self.lru_width} is not divisible by n_heads={self.n_heads}")
        check_real_numbers(self, ("gate_exponent", "min_radius", "max_radius"))
        if not self.gate_exponent > 0:
            raise ValueError(f"HawkConfig.gate_exponent must be > 0, got {self.gate_exponent!r}")
        if not 0.0 < self.min_radius < self.max_radius < 1.0:
            raise ValueError(
                f"HawkConfig needs 0 < min_radius < max_radius < 1, got {self.min_radius!r}, {self.max_radius!r}"
            )

    @property
    def controlled_layer(self) -> int:
        """Default controller insertion layer, mid-depth ``L // 2`` (SPEC A§3.4: 4 of 8)."""
        return self.n_layers // 2



HAWK_PRESETS: dict[str, HawkConfig] = {
    "smoke": HawkConfig(width=32, lru_width=32, n_layers=2, n_heads=2, mlp_hidden=64),
    "default": HawkConfig(width=128, lru_width=128, n_layers=8, n_heads=8, mlp_hidden=256),
    "paper": HawkConfig(),
}
"""Named model sizes (SPEC B5): ``paper`` is Table A5/A15; ``default`` keeps depth 8 (controller at
layer 4) at half width for 2 CPU cores; ``smoke`` is for CI."""


# ---------------------------------------------------------------------------------------------
# RG-LRU
# ---------------------------------------------------------------------------------------------


SCAN_CHUNK = 32
"""Timesteps per chunk of :func:`rg_lru_scan` (the Python loop runs ``T / SCAN_CHUNK`` times)."""
SCAN_MIN_LOG_A = -20.0
"""``log a_t`` is clamped here inside :func:`rg_lru_scan` so that ``SCAN_CHUNK`` cumulative steps
stay inside float64's exponent range (32 × 20 = 640 < 709). A decay below ``e^-20 ≈ 2e-9`` is
already invisible next to the new input in float32; :meth:`RGLRU.step` applies the same clamp."""


def rg_lru_scan(log_a: Tensor, inputs: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Linear recurrence ``h_t = exp(log_a_t) ⊙ h_{t-1} + inputs_t`` over time (SPEC §9.2 item 14).

    Args:
        log_a: ``(B, T, R)`` log decay, ``<= 0``.
        inputs: ``(B, T, R)`` already-normalised inputs ``√(1-a²) ⊙ i ⊙ u``.
        h0: ``(B, R)`` state before the first step; zeros if ``None``.

    Returns:
        All states ``(B, T, R)`` and the last state ``(B, R)``, both float32.

    Chunked closed form: inside a chunk, with ``G_t = Σ_{k<=t} log a_k``,
    ``h_t = e^{G_t} (h_0 + Σ_{s<=t} e^{-G_s} x_s)`` -- two cumulative sums instead of ``T``
    sequential steps (forward + backward at B=32, T=300, R=128 on one CPU thread: 7.0× faster than a
    step loop, ``results/hawk_scan_speed.json``). It is evaluated in float64 and
    ``G`` is bounded by ``SCAN_CHUNK · SCAN_MIN_LOG_A``, so ``e^{±G}`` cannot overflow.
    """
    if log_a.shape != inputs.shape or log_a.dim() != 3:
        raise ValueError(f"log_a and inputs must both be (B, T, R), got {tuple(log_a.shape)} and {tuple(inputs.shape)}")
    log_a = log_a.double().clamp(min=SCAN_MIN_LOG_A)
    inputs = inputs.double()
    h = inputs.new_zeros(inputs.shape[0], inputs.shape[2]) if h0 is None else h0.double()  # (B, R)
    chunks = []
    # split (not slicing) so that autograd's backward is one concatenation, not a zero-filled
    # (B, T, R) buffer per chunk
    for chunk_log_a, chunk_inputs in zip(log_a.split(SCAN_CHUNK, dim=1), inputs.split(SCAN_CHUNK, dim=1)):
        cumulative = chunk_log_a.cumsum(dim=1)  # (B, C, R): G_t
        scaled = (chunk_inputs * torch.exp(-cumulative)).cumsum(dim=1)  # (B, C, R)
        states = torch.exp(cumulative) * (h.unsqueeze(1) + scaled)  # (B, C, R)
        chunks.append(states)
        h = states[:, -1]
    return torch.cat(chunks, dim=1).float(), h.float()


MAX_SQRT_GRADIENT = 1000.0
"""Cap on the derivative of the square root in the RG-LRU's input normaliser ``√(1 - a²)``
(recurrentgemma's ``_MAX_SQRT_GRADIENT``; SPEC §9.2 item 14)."""


class SqrtBoundDerivative(torch.autograd.Function):
    """``√x`` whose backward caps ``d√x/dx = 1/(2√x)`` at :data:`MAX_SQRT_GRADIENT` (SPEC §9.2 item 14).

    The RG-LRU normalises its input by ``√(1 - a_t²)``; as the recurrence gate ``r_t`` goes to 0,
    ``a_t`` goes to 1 and the plain derivative to infinity (at ``r_t = 0`` in float32 it is
    ``inf``, and ``inf · 0`` makes the gradients NaN). recurrentgemma's ``SqrtBoundDerivative``
    bounds it as here: the forward is ``torch.sqrt`` itself, bit for bit, and the backward is
    ``grad / √max(4x, MAX_SQRT_GRADIENT⁻²)``, which equals autograd's ``grad / (2√x)`` exactly
    (scaling by 4 is exact, and so is the square root's factor 2) wherever ``4x >= 1e-6``.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return torch.sqrt(x)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad_output / torch.sqrt(torch.clamp(4.0 * x, min=MAX_SQRT_GRADIENT**-2))


def sqrt_bound_derivative(x: Tensor) -> Tensor:
    """``√x`` with its derivative capped at :data:`MAX_SQRT_GRADIENT` (:class:`SqrtBoundDerivative`)."""
    return SqrtBoundDerivative.apply(x)


class BlockDiagonalLinear(nn.Module):
    """``H`` independent ``(R/H -> R/H)`` linear maps on the head blocks of an ``R`` vector."""

    def __init__(self, width: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads, self.head_size = n_heads, width // n_heads
        self.weight = nn.Parameter(torch.empty(n_heads, self.head_size, self.head_size))  # (H, out, in)
        self.bias = nn.Parameter(torch.zeros(n_heads, self.head_size))
        for head in range(n_heads):
            variance_scaling_(self.weight.data[head])

    def forward(self, x: Tensor) -> Tensor:
        blocks = x.unflatten(-1, (self.n_heads, self.head_size))  # (..., H, R/H)
        out = torch.einsum("...hi,hoi->...ho", blocks, self.weight) + self.bias  # (..., H, R/H)
        return out.flatten(-2)  # (..., R)


class RGLRU(nn.Module):
    """Real-Gated Linear Recurrent Unit (Griffin §2.4; SPEC A§3.3, §9.2 item 14)."""

    def __init__(self, config: HawkConfig) -> None:
        super().__init__()
        self.gate_exponent = config.gate_exponent
        self.recurrence_gate = BlockDiagonalLinear(config.lru_width, config.n_heads)
        self.input_gate = BlockDiagonalLinear(config.lru_width, config.n_heads)
        # softplus(Λ) = -log a with a² ~ U[min², max²] (Griffin's ring initialisation).
        radius_sq = torch.empty(config.lru_width).uniform_(config.min_radius**2, config.max_radius**2)
        neg_log_a = -0.5 * torch.log(radius_sq)
        self.a_param = nn.Parameter(torch.log(torch.expm1(neg_log_a)))  # (R,) inverse softplus

    def _gated(self, u: Tensor, first: Tensor) -> tuple[Tensor, Tensor]:
        """``log a_t`` and normalised input for ``u`` (``(..., R)``); ``first`` marks episode starts."""
        r = torch.sigmoid(self.recurrence_gate(u))
        i = torch.sigmoid(self.input_gate(u))
        log_a = (-self.gate_exponent * r * F.softplus(self.a_param)).float().clamp(min=SCAN_MIN_LOG_A)  # (..., R)
        # √(1 - a²), stable near a = 1, its gradient bounded as recurrentgemma's (SPEC §9.2 item 14)
        multiplier = sqrt_bound_derivative(-torch.expm1(2.0 * log_a))
        multiplier = torch.where(first.unsqueeze(-1), torch.ones_like(multiplier), multiplier)
        return log_a, multiplier * (i * u).float()

    def forward(self, u: Tensor) -> Tensor:
        """Full sequence ``(B, T, R)`` from a zero state, the first step being an episode start."""
        first = torch.zeros(u.shape[:2], dtype=torch.bool, device=u.device)
        first[:, 0] = True
        log_a, x = self._gated(u, first)
        states, _ = rg_lru_scan(log_a, x)
        return states.to(u.dtype)

    def step(self, u: Tensor, h: Tensor, first: Tensor) -> Tensor:
        """One step on ``(B, R)``; updates the float32 state ``h`` in place and returns it."""
        log_a, x = self._gated(u, first)
        h.mul_(log_a.exp()).add_(x)
        return h.to(u.dtype)


class RecurrentBlock(nn.Module):
    """Griffin's temporal-mixing block: GeLU gate branch × (Conv1D → RG-LRU) branch."""

    def __init__(self, config: HawkConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(config.width, config.lru_width)
        self.input_proj = nn.Linear(config.width, config.lru_width)
        self.conv_weight = nn.Parameter(torch.empty(config.conv_width, config.lru_width))  # (K, R): tap k looks back k
        self.conv_bias = nn.Parameter(torch.zeros(config.lru_width))
        variance_scaling_(self.conv_weight.data.T)
        self.rg_lru = RGLRU(config)
        self.out_proj = nn.Linear(config.lru_width, config.width)

    def _conv(self, u: Tensor) -> Tensor:
        """Depthwise causal convolution over ``(B, T, R)``: ``Σ_k w_k ⊙ u_{t-k} + b``."""
        taps = self.conv_weight.shape[0]
        kernel = self.conv_weight.flip(0).T.unsqueeze(1)  # (R, 1, K): conv1d correlates, oldest tap first
        padded = F.pad(u.transpose(1, 2), (taps - 1, 0))  # (B, R, K-1+T)
        return F.conv1d(padded, kernel, self.conv_bias, groups=u.shape[-1]).transpose(1, 2)  # (B, T, R)

    def forward(self, x: Tensor) -> Tensor:
        gate = F.gelu(self.gate_proj(x))  # (B, T, R)
        u = self._conv(self.input_proj(x))  # (B, T, R)
        return self.out_proj(self.rg_lru(u) * gate)  # (B, T, W)

    def step(self, x: Tensor, conv_state: Tensor, h: Tensor, first: Tensor) -> Tensor:
        """One step on ``(B, W)``; ``conv_state`` ``(B, K-1, R)`` holds the previous inputs, newest last."""
        gate = F.gelu(self.gate_proj(x))  # (B, R)
        u_new = self.input_proj(x)  # (B, R)
        window = torch.cat([conv_state, u_new.unsqueeze(1)], dim=1)  # (B, K, R): oldest first
        u = (window * self.conv_weight.flip(0)).sum(1) + self.conv_bias  # (B, R)
        conv_state.copy_(window[:, 1:])
        return self.out_proj(self.rg_lru.step(u, h, first) * gate)  # (B, W)


class HawkBlock(nn.Module):
    """Pre-norm residual block: ``x + Recurrent(norm(x))`` then ``x + MLP(norm(x))``."""

    def __init__(self, config: HawkConfig) -> None:
        super().__init__()
        self.temporal_norm = nn.RMSNorm(config.width)
        self.temporal = RecurrentBlock(config)
        self.mlp_norm = nn.RMSNorm(config.width)
        self.mlp = nn.Sequential(nn.Linear(config.width, config.mlp_hidden), nn.ReLU(), nn.Linear(config.mlp_hidden, config.width))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.temporal(self.temporal_norm(x))
        return x + self.mlp(self.mlp_norm(x))

    def step(self, x: Tensor, conv_state: Tensor, h: Tensor, first: Tensor) -> Tensor:
        x = x + self.temporal.step(self.temporal_norm(x), conv_state, h, first)
        return x + self.mlp(self.mlp_norm(x))


# ---------------------------------------------------------------------------------------------
# Outputs and state
# ---------------------------------------------------------------------------------------------


@dataclass
class HawkOutput:
    """Full-sequence outputs of :meth:`HawkSSM.forward`: diagonal Gaussians over a_t and o_{t+1}."""

    action_mean: Tensor
    """``(B, T, A)``."""
    action_log_std: Tensor
    """``(B, T, A)``."""
    next_obs_mean: Tensor
    """``(B, T, D)``, in standardised units (:meth:`HawkSSM.standardise`)."""
    next_obs_log_std: Tensor
    """``(B, T, D)``."""
    residuals: list[Tensor] | None = None
    """``L + 1`` tensors ``(B, T, W)`` (uncontrolled value at the controlled layer), or ``None``."""


@dataclass
class HawkStepOutput:
    """One-timestep outputs of :meth:`HawkSSM.step_upper` (each ``(B, A)`` or ``(B, D)``)."""

    action_mean: Tensor
    action_log_std: Tensor
    next_obs_mean: Tensor
    next_obs_log_std: Tensor


@dataclass
class HawkState(InferenceState):
    """Per-block recurrent state for batched incremental inference (SPEC B4).

    ``lengths[b]`` counts the timesteps row ``b`` has completed in its current episode; a row
    with length 0 starts an episode at its next step (zero state, input multiplier 1).
    """

    conv: list[Tensor]
    """Per block, ``(B, K-1, R)``: the last conv inputs, newest last."""
    hidden: list[Tensor]
    """Per block, ``(B, R)`` float32 RG-LRU state."""
    lengths: Tensor
    """``(B,)`` long: completed timesteps per row."""
    pending_layer: int | None = None
    """Layer reached by a ``step_lower`` whose ``step_upper`` has not run yet."""
    pending_context: Tensor | None = None
    """``(B,)`` bool: rows whose pending timestep starts an episode, shared by both halves."""

    def _clear_rows(self, mask: Tensor) -> None:
        for conv, hidden in zip(self.conv, self.hidden):
            conv.masked_fill_(mask.view(-1, 1, 1), 0.0)
            hidden.masked_fill_(mask.view(-1, 1), 0.0)


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------


_LOG_STD_OFFSET = math.log(-LOG_STD_MIN / LOG_STD_MAX)
"""Makes a zero head output mean ``log σ = 0``: unit variance, the scale of standardised targets."""


def _bounded_log_std(raw: Tensor) -> Tensor:
    """Squash to ``(LOG_STD_MIN, LOG_STD_MAX)`` smoothly (a hard clamp would stop gradients)."""
    return LOG_STD_MIN + (LOG_STD_MAX - LOG_STD_MIN) * torch.sigmoid(raw + _LOG_STD_OFFSET)


class HawkSSM(ResidualStreamModel):
    """Observation-only Hawk model with Gaussian action and next-observation heads (SPEC A§3.3).

    Same residual-stream interface as :class:`agents.models.transformer.CausalTransformer`:
    ``forward(..., controller, controlled_layer, return_residuals)``, ``forward_lower`` /
    ``forward_upper``, and ``init_state`` / ``step_lower`` / ``step_upper`` / ``step``.
    """

    ACTION_METRIC = "action_mse"
    """The per-step action metric :meth:`loss` reports besides the NLLs."""
    OUTPUT = HawkOutput
    STEP_OUTPUT = HawkStepOutput

    def __init__(self, config: HawkConfig) -> None:
        super().__init__()
        if not isinstance(config, HawkConfig):
            raise TypeError(f"config must be a HawkConfig, got {type(config).__name__}")
        self.config = config
        # Per-dimension observation standardisation, fitted on the training data by the trainer
        # (identity until then); saved with the weights.
        self.register_buffer("obs_mean", torch.zeros(config.obs_dim))
        self.register_buffer("obs_scale", torch.ones(config.obs_dim))
        self.embed = nn.Linear(config.obs_dim, config.width)
        self.blocks = nn.ModuleList(HawkBlock(config) for _ in range(config.n_layers))
        self.final_norm = nn.RMSNorm(config.width)
        self.action_head = nn.Linear(config.width, 2 * config.action_dim)
        self.next_obs_head = nn.Linear(config.width, 2 * config.obs_dim)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                variance_scaling_(module.weight)
                nn.init.zeros_(module.bias)

    def set_observation_statistics(self, mean: Tensor, scale: Tensor) -> None:
        """Standardise observations as ``(o - mean) / scale`` (both ``(D,)``, ``scale > 0``).

        The next-observation head predicts the *standardised* ``o_{t+1}``; :meth:`loss` scores it
        there (the NLL differs from the raw-unit one by the constant ``Σ_d log scale_d``).
        """
        mean, scale = torch.as_tensor(mean, dtype=torch.float32), torch.as_tensor(scale, dtype=torch.float32)
        if mean.shape != (self.config.obs_dim,) or scale.shape != (self.config.obs_dim,):
            raise ValueError(f"mean and scale must have shape ({self.config.obs_dim},), got {tuple(mean.shape)}, {tuple(scale.shape)}")
        if not (torch.isfinite(mean).all() and torch.isfinite(scale).all() and (scale > 0).all()):
            raise ValueError("observation mean must be finite and scale finite and > 0")
        self.obs_mean.copy_(mean)
        self.obs_scale.copy_(scale)

    def standardise(self, observations: Tensor) -> Tensor:
        """``(o - mean) / scale`` with the fitted statistics."""
        return (observations - self.obs_mean) / self.obs_scale

    # -- argument checks ----------------------------------------------------------------------

    def _check_observations(self, observations: Tensor, n_dims: int) -> None:
        super()._check_observations(observations, n_dims)
        if not observations.dtype.is_floating_point:
            raise TypeError(f"observations must be a float tensor, got {observations.dtype}")

    def _embed(self, observations: Tensor) -> Tensor:
        return self.embed(self.standardise(observations))

    def _heads(self, residual: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        hidden = self.final_norm(residual)  # (..., W)
        action_mean, action_raw = self.action_head(hidden).chunk(2, dim=-1)  # (..., A) each
        obs_mean, obs_raw = self.next_obs_head(hidden).chunk(2, dim=-1)  # (..., D) each
        return action_mean, _bounded_log_std(action_raw), obs_mean, _bounded_log_std(obs_raw)

    # -- hooks of ResidualStreamModel (the layer loops live there) ----------------------------

    def _sequence_context(self, length: int) -> None:
        return None  # whole episodes from their first step: the scan needs nothing else

    def _run_block(self, depth: int, x: Tensor, context: None) -> Tensor:
        return self.blocks[depth](x)

    def _step_context(self, state: HawkState) -> Tensor:
        return state.lengths == 0  # (B,) rows starting an episode: zero state, input multiplier 1

    def _step_block(self, depth: int, x: Tensor, state: HawkState, context: Tensor) -> Tensor:
        return self.blocks[depth].step(x, state.conv[depth], state.hidden[depth], context)

    # -- incremental inference ----------------------------------------------------------------

    def init_state(self, batch_size: int) -> HawkState:
        """Zero recurrent state for ``batch_size`` parallel rows, each at an episode start."""
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        weight = self.embed.weight
        config = self.config
        return HawkState(
            conv=[weight.new_zeros(batch_size, config.conv_width - 1, config.lru_width) for _ in range(self.n_layers)],
            hidden=[torch.zeros(batch_size, config.lru_width, device=weight.device) for _ in range(self.n_layers)],
            lengths=torch.zeros(batch_size, dtype=torch.long, device=weight.device),
        )

    def init_inference_state(self, batch_size: int, max_len: int | None = None) -> HawkState:
        """The incremental-inference state rollouts use; a recurrence needs no ``max_len``."""
        return self.init_state(batch_size)

    @staticmethod
    def select_action(output: HawkStepOutput, generator: torch.Generator, greedy: bool = False) -> Tensor:
        """``(B, A)`` actions: the Gaussian head's mean if ``greedy``, else a sample from it.

        No clipping here: the action bounds belong to the environment (rollouts clip to them).
        """
        if greedy:
            return output.action_mean
        noise = torch.randn(output.action_mean.shape, generator=generator, dtype=output.action_mean.dtype)
        return output.action_mean + output.action_log_std.exp() * noise

    @staticmethod
    def action_nll_per_step(output: HawkOutput | HawkStepOutput, actions: Tensor) -> Tensor:
        """``-ln p(a_t | o_{1:t})`` per step under the Gaussian head, ``(B, T)`` (or ``(B,)`` for a step)."""
        return gaussian_nll(output.action_mean, output.action_log_std, actions)

    @staticmethod
    def action_entropy(output: HawkOutput | HawkStepOutput) -> Tensor:
        """Differential entropy of the Gaussian action head per step, ``(...)``."""
        return (output.action_log_std + 0.5 * (_LOG_2PI + 1.0)).sum(-1)

    def loss(self, output: HawkOutput, batch: Mapping[str, Tensor], obs_loss_weight: float) -> dict[str, Tensor]:
        """:func:`gaussian_sequence_loss` on a batch from :func:`agents.pretrain.batch_tensors`
        (next observations standardised like the inputs)."""
        next_observations = self.standardise(batch["next_observations"])
        return gaussian_sequence_loss(output, batch["actions"], next_observations, batch["mask"], obs_loss_weight)


# ---------------------------------------------------------------------------------------------
# Loss
# ---------------------------------------------------------------------------------------------


def gaussian_nll(mean: Tensor, log_std: Tensor, target: Tensor) -> Tensor:
    """Diagonal-Gaussian negative log-likelihood summed over the last dim (nats)."""
    z = (target - mean) * torch.exp(-log_std)
    return (0.5 * z.square() + log_std + 0.5 * _LOG_2PI).sum(-1)


def gaussian_sequence_loss(
    output: HawkOutput,
    actions: Tensor,
    next_observations: Tensor,
    mask: Tensor,
    obs_loss_weight: float,
) -> dict[str, Tensor]:
    """Pretraining objective ``-ln p(a_t | o_{1:t}) - λ ln p(o_{t+1} | o_{1:t})`` (SPEC A§3.1).

    Both terms are diagonal-Gaussian NLLs summed over their dims and averaged over the valid
    timesteps (ant: λ = 10, SPEC A§3.3).

    Returns:
        ``loss`` (differentiable), ``action_nll``, ``obs_nll`` and ``action_mse`` (the squared
        error of the mean action, averaged over dims; detached).
    """
    if not actions.dtype.is_floating_point:
        raise TypeError(f"actions must be a float tensor for the Gaussian head, got {actions.dtype}")
    if actions.shape != output.action_mean.shape:
        raise ValueError(f"actions must have shape {tuple(output.action_mean.shape)}, got {tuple(actions.shape)}")
    if next_observations.shape != output.next_obs_mean.shape:
        raise ValueError(
            f"next_observations must have shape {tuple(output.next_obs_mean.shape)}, got {tuple(next_observations.shape)}"
        )
    if mask.shape != actions.shape[:2] or mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor of shape {tuple(actions.shape[:2])}, got {mask.dtype} {tuple(mask.shape)}")
    if obs_loss_weight < 0:
        raise ValueError(f"obs_loss_weight must be >= 0, got {obs_loss_weight}")
    n_valid = mask.sum()
    if int(n_valid) == 0:
        raise ValueError("mask selects no timesteps")
    weights = mask.to(output.action_mean.dtype)  # (B, T)
    action_nll = (gaussian_nll(output.action_mean, output.action_log_std, actions) * weights).sum() / n_valid
    obs_nll = (gaussian_nll(output.next_obs_mean, output.next_obs_log_std, next_observations) * weights).sum() / n_valid
    mse = ((output.action_mean - actions).square().mean(-1) * weights).sum() / n_valid
    return {
        "loss": action_nll + obs_loss_weight * obs_nll,
        "action_nll": action_nll,
        "obs_nll": obs_nll,
        "action_mse": mse.detach(),
    }
