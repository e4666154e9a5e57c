"""Causal transformer base model for the gridworld (SPEC A§3.1, A§3.2, A§3.4, B4).

One token per timestep whose input is the observation ``o_t``; actions are never fed back as
tokens (SPEC A§3.1, §9.2 item 11). Two heads read the final residual: the next action
``a_t`` (categorical) and the next observation ``o_{t+1}``.

Architecture (Tables A4/A16):
- input embedding ``Linear(D -> W)`` (``input_encoding="flat"``, the paper) or a linear map of
  the agent-centred view of the same observation (``"egocentric"``, :mod:`grid_encoding`);
  there are no absolute position embeddings;
- ``L`` pre-norm blocks: ``x + Attn(LN(x))`` then ``x + MLP(LN(x))`` with a ReLU MLP;
- causal multi-head attention with a T5-style relative position bias (32 buckets, causal
  bucketing, max distance 128; INFERRED: "relative position embeddings as attention biases").
  ONE bias table ``(buckets, heads)`` is shared by all layers, as in T5 (INFERRED: the paper
  does not say); scores use the usual ``1/sqrt(head_dim)`` scaling;
- a final LayerNorm, then the action head and the next-observation head;
- every weight is drawn with variance scaling 0.1 (fan-in, truncated normal whose *actual*
  standard deviation is ``sqrt(0.1 / fan_in)``, as JAX's ``variance_scaling``), biases are zero.

Next-observation likelihood (INFERRED, SPEC A§3.1 / §9.1 item 7): the grid observation is
637 binary bits (13 one-hot 7×7 planes), modelled as independent Bernoullis; the NLL is the
BCE-with-logits summed over the 637 bits.

Residual-stream conventions (SPEC A§3.4): layer 0 is the residual just before block 1, layer
``l`` (1..L) is the residual after block ``l``. A controller at layer ``l`` rewrites ``e_{t,l}``
before blocks ``l+1..L``; the blocks below never see it (SPEC §9.2 item 9).

Incremental inference keeps a KV cache with one length per batch row, so rows can be reset
independently when an environment starts a new episode. Rollouts compute ``e_t`` with
:meth:`CausalTransformer.step_lower`, decide the controller, then finish with
:meth:`CausalTransformer.step_upper`, whose caches therefore hold the *controlled* residuals.

Shape key:
    B  batch size (sequences or parallel environments)
    T  sequence length (timesteps)
    S  number of cached key positions attended to
    D  observation size (637 for the 7×7 grid)
    A  number of actions (4)
    W  residual width n_e
    H  attention heads, K = W / H head size
    M  MLP hidden size
    L  number of blocks
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from agents.models.grid_encoding import INPUT_ENCODINGS, EgocentricGridEmbedding
from agents.models.residual_stream import (
    ConfigDict,
    Controller,
    InferenceState,
    ResidualStreamModel,
    check_real_numbers,
)

__all__ = [
    "TRANSFORMER_PRESETS",
    "CausalTransformer",
    "Controller",
    "KVCache",
    "ModelOutput",
    "StepOutput",
    "TransformerConfig",
    "relative_position_bucket",
    "sequence_loss",
    "variance_scaling_",
]

INIT_SCALE = 0.1
"""Variance-scaling factor of every initialiser (Tables A4/A16)."""

_TRUNCATED_NORMAL_STD = 0.87962566103423978
"""Std of a unit normal truncated to [-2, 2]; dividing by it restores the target std (JAX)."""


@dataclass(frozen=True)
class TransformerConfig(ConfigDict):
    """Sizes of the grid causal transformer (SPEC A§3.2, Tables A4/A16; presets SPEC B5)."""

    obs_dim: int = 637
    """Observation size D: 13 one-hot 7×7 planes (SPEC B2)."""
    n_actions: int = 4
    """Number of discrete actions A (up, right, down, left)."""
    width: int = 256
    """Residual width n_e (paper: 256)."""
    n_layers: int = 6
    """Number of transformer blocks L (paper: 6; ablations 4 and 8)."""
    n_heads: int = 4
    """Attention heads (paper: 4 of dimension 64); must divide ``width``."""
    mlp_hidden: int = 512
    """Hidden size of the ReLU MLP (paper: 512)."""
    n_position_buckets: int = 32
    """Relative-position buckets of the attention bias (paper: 32; T5-style, INFERRED)."""
    max_distance: int = 128
    """Distances at or beyond this share the last bucket (T5 default, INFERRED)."""
    dropout: float = 0.0
    """Dropout after the attention and MLP sublayers (the paper mentions none)."""
    input_encoding: str = "flat"
    """``"flat"``: one linear map of the observation (paper). ``"egocentric"``: linear map of the
    agent-centred re-indexing of the same observation (:mod:`agents.models.grid_encoding`;
    a documented deviation for CPU budgets, used by the ``default`` preset)."""
    grid_size: int = 7
    """Side G of the grid whose one-hot planes make up the observation (egocentric encoding only)."""

    def __post_init__(self) -> None:
        for name in ("obs_dim", "n_actions", "width", "n_layers", "n_heads", "mlp_hidden", "max_distance", "grid_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"TransformerConfig.{name} must be a positive int, got {value!r}")
        if self.width % self.n_heads != 0:
            raise ValueError(f"TransformerConfig.width={self.width} is not divisible by n_heads={self.n_heads}")
        if not isinstance(self.n_position_buckets, int) or self.n_position_buckets < 2:
            raise ValueError(
                f"TransformerConfig.n_position_buckets must be an int >= 2, got {self.n_position_buckets!r}"
            )
        if self.max_distance <= self.n_position_buckets // 2:
            raise ValueError(
                f"TransformerConfig.max_distance={self.max_distance} must exceed n_position_buckets // 2 "
                f"= {self.n_position_buckets // 2}"
            )
        check_real_numbers(self, ("dropout",))
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"TransformerConfig.dropout must be in [0, 1), got {self.dropout!r}")
        if self.input_encoding not in INPUT_ENCODINGS:
            raise ValueError(
                f"TransformerConfig.input_encoding must be one of {INPUT_ENCODINGS}, got {self.input_encoding!r}"
            )

    @property
    def controlled_layer(self) -> int:
        """Default controller insertion layer, mid-depth ``L // 2`` (SPEC A§3.4)."""
        return self.n_layers // 2

    @property
    def head_dim(self) -> int:
        """Size K of each attention head."""
        return self.width // self.n_heads



TRANSFORMER_PRESETS: dict[str, TransformerConfig] = {
    "smoke": TransformerConfig(width=32, n_layers=2, n_heads=2, mlp_hidden=64, input_encoding="egocentric"),
    "default": TransformerConfig(width=128, n_layers=6, n_heads=4, mlp_hidden=256, input_encoding="egocentric"),
    "paper": TransformerConfig(width=256, n_layers=6, n_heads=4, mlp_hidden=512),
}
"""Named model sizes (SPEC B5): ``paper`` is Table A4/A16 with the paper's flat input embedding;
``default`` keeps depth 6 (so the mid-depth controller story holds) at half width for 2 CPU
cores, with the egocentric input embedding (with the flat one, 10k CPU steps left the subgoal
undecodable: ``agents/models/grid_encoding.py``); ``smoke`` is for CI."""


# ---------------------------------------------------------------------------------------------
# Initialisation and relative positions
# ---------------------------------------------------------------------------------------------


def variance_scaling_(weight: Tensor, scale: float = INIT_SCALE) -> Tensor:
    """Fill a ``(fan_out, fan_in)`` weight with variance scaling (Tables A4/A16), in place.

    Truncated normal on ``[-2σ', 2σ']`` with ``σ' = sqrt(scale / fan_in) / 0.8796``, so the
    resulting standard deviation is ``sqrt(scale / fan_in)`` (JAX ``variance_scaling``
    convention with ``mode="fan_in"``, ``distribution="truncated_normal"``).
    """
    fan_in = weight.shape[-1]
    std = math.sqrt(scale / fan_in) / _TRUNCATED_NORMAL_STD
    with torch.no_grad():
        return nn.init.trunc_normal_(weight, mean=0.0, std=std, a=-2.0 * std, b=2.0 * std)


def relative_position_bucket(distance: Tensor, n_buckets: int, max_distance: int) -> Tensor:
    """T5 causal ("unidirectional") bucketing of query-minus-key distances (SPEC A§3.2).

    Distances ``0..n_buckets//2 - 1`` get their own bucket; larger ones are binned
    logarithmically up to ``max_distance``, beyond which everything shares the last bucket.
    Negative distances (future keys, always masked) are clamped to bucket 0.

    Args:
        distance: integer tensor of ``query_position - key_position``, any shape.

    Returns:
        Long tensor of the same shape with values in ``[0, n_buckets)``.
    """
    distance = distance.clamp(min=0)
    max_exact = n_buckets // 2
    log_ratio = torch.log(distance.clamp(min=max_exact).float() / max_exact) / math.log(max_distance / max_exact)
    large = (max_exact + (log_ratio * (n_buckets - max_exact)).long()).clamp(max=n_buckets - 1)
    return torch.where(distance < max_exact, distance, large)


class RelativePositionBias(nn.Module):
    """Learned per-head additive attention bias indexed by relative-position bucket.

    The table is a lookup from a one-hot bucket, so it is initialised with variance scaling
    over ``fan_in = n_buckets`` (INFERRED).
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.n_buckets = config.n_position_buckets
        self.max_distance = config.max_distance
        self.table = nn.Parameter(torch.empty(config.n_position_buckets, config.n_heads))  # (buckets, H)
        variance_scaling_(self.table.T)

    def forward(self, distance: Tensor) -> Tensor:
        """Bias for integer distances of shape ``(*shape)``; returns ``(*shape, H)``."""
        return self.table[relative_position_bucket(distance, self.n_buckets, self.max_distance)]

    def causal_mask(self, length: int) -> Tensor:
        """Additive attention mask for a full sequence: bias plus ``-inf`` above the diagonal.

        Returns:
            ``(1, H, T, T)`` float tensor (differentiable in the bias table).
        """
        positions = torch.arange(length, device=self.table.device)  # (T,)
        distance = positions[:, None] - positions[None, :]  # (T, T) query minus key
        bias = self(distance).permute(2, 0, 1)  # (H, T, T)
        future = torch.full((length, length), float("-inf"), device=bias.device, dtype=bias.dtype)
        return (bias + future.triu(diagonal=1)).unsqueeze(0)  # (1, H, T, T)

    def step_mask(self, lengths: Tensor, n_keys: int) -> Tensor:
        """Additive mask for one new query per row, at position ``lengths[b]``.

        Keys ``0..lengths[b]`` are the row's own episode (the new key included); later slots
        hold stale entries from before a reset, or nothing, and are masked.

        Returns:
            ``(B, H, 1, S)`` float tensor with ``S = n_keys``.
        """
        keys = torch.arange(n_keys, device=lengths.device)  # (S,)
        distance = lengths[:, None] - keys[None, :]  # (B, S)
        bias = self(distance).permute(0, 2, 1)  # (B, H, S)
        invalid = torch.zeros(distance.shape, device=bias.device, dtype=bias.dtype)  # (B, S)
        invalid.masked_fill_(distance < 0, float("-inf"))
        return (bias + invalid[:, None, :]).unsqueeze(2)  # (B, H, 1, S)


# ---------------------------------------------------------------------------------------------
# Blocks
# ---------------------------------------------------------------------------------------------


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention; causality and position enter only through the additive mask."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.head_dim = config.head_dim
        self.width = config.width
        self.qkv = nn.Linear(config.width, 3 * config.width)
        self.out = nn.Linear(config.width, config.width)
        self.dropout = config.dropout
        self.scale = 1.0 / math.sqrt(config.head_dim)

    def _heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Project ``(..., W)`` to q, k, v of shape ``(..., H, K)`` each."""
        q, k, v = self.qkv(x).split(self.width, dim=-1)  # 3 × (..., W)
        shape = (*x.shape[:-1], self.n_heads, self.head_dim)
        return q.view(shape), k.view(shape), v.view(shape)

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """Softmax attention with an additive mask: q ``(B, H, Q, K)``, k/v ``(B, H, S, K)``.

        Written out rather than ``F.scaled_dot_product_attention``: with a float mask on CPU
        this is about 2x faster for training and 20x faster for single-query cached steps
        (measured, torch 2.13, 2 threads).
        """
        scores = torch.matmul(q, k.transpose(-1, -2)) * self.scale + mask  # (B, H, Q, S)
        weights = F.dropout(scores.softmax(dim=-1), self.dropout, self.training)  # (B, H, Q, S)
        return torch.matmul(weights, v)  # (B, H, Q, K)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """Full sequence: ``x`` ``(B, T, W)``, ``mask`` ``(1, H, T, T)`` -> ``(B, T, W)``."""
        batch, length, _ = x.shape
        q, k, v = (t.transpose(1, 2) for t in self._heads(x))  # 3 × (B, H, T, K)
        y = self._attend(q, k, v, mask)  # (B, H, T, K)
        return self.out(y.transpose(1, 2).reshape(batch, length, self.width))  # (B, T, W)

    def step(self, x: Tensor, keys: Tensor, values: Tensor, lengths: Tensor, mask: Tensor) -> Tensor:
        """One new token per row; appends its key/value at ``lengths[b]``.

        Args:
            x: ``(B, W)`` block input at the new timestep.
            keys, values: this layer's cache, ``(B, H, max_len, K)``, written in place.
            lengths: ``(B,)`` write position of each row.
            mask: ``(B, H, 1, S)`` from :meth:`RelativePositionBias.step_mask`.
        """
        q, k, v = self._heads(x)  # 3 × (B, H, K)
        rows = torch.arange(x.shape[0], device=x.device)  # (B,)
        keys[rows, :, lengths] = k
        values[rows, :, lengths] = v
        n_keys = mask.shape[-1]
        y = self._attend(q.unsqueeze(2), keys[:, :, :n_keys], values[:, :, :n_keys], mask)  # (B, H, 1, K)
        return self.out(y.reshape(x.shape[0], self.width))  # (B, W)


class TransformerBlock(nn.Module):
    """Pre-norm block: ``x + Attn(LN(x))`` then ``x + MLP(LN(x))`` with a ReLU MLP."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.attn_norm = nn.LayerNorm(config.width)
        self.attn = CausalSelfAttention(config)
        self.mlp_norm = nn.LayerNorm(config.width)
        self.mlp = nn.Sequential(
            nn.Linear(config.width, config.mlp_hidden), nn.ReLU(), nn.Linear(config.mlp_hidden, config.width)
        )
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """``(B, T, W)`` -> ``(B, T, W)``."""
        x = x + self.dropout(self.attn(self.attn_norm(x), mask))  # (B, T, W)
        return x + self.dropout(self.mlp(self.mlp_norm(x)))  # (B, T, W)

    def step(self, x: Tensor, keys: Tensor, values: Tensor, lengths: Tensor, mask: Tensor) -> Tensor:
        """``(B, W)`` -> ``(B, W)`` for one new timestep, using and extending the KV cache."""
        x = x + self.dropout(self.attn.step(self.attn_norm(x), keys, values, lengths, mask))  # (B, W)
        return x + self.dropout(self.mlp(self.mlp_norm(x)))  # (B, W)


# ---------------------------------------------------------------------------------------------
# Outputs and cache
# ---------------------------------------------------------------------------------------------


@dataclass
class ModelOutput:
    """Full-sequence outputs of :meth:`CausalTransformer.forward`."""

    action_logits: Tensor
    """``(B, T, A)`` logits of ``p(a_t | o_{1:t})``."""
    next_obs_logits: Tensor
    """``(B, T, D)`` Bernoulli logits of ``p(o_{t+1} | o_{1:t})``."""
    residuals: list[Tensor] | None = None
    """``L + 1`` tensors ``(B, T, W)``: the residual at layers ``0..L`` (uncontrolled value at
    the controlled layer), or ``None`` unless requested."""


@dataclass
class StepOutput:
    """One-timestep outputs of :meth:`CausalTransformer.step_upper`."""

    action_logits: Tensor
    """``(B, A)``."""
    next_obs_logits: Tensor
    """``(B, D)``."""


@dataclass
class KVCache(InferenceState):
    """Per-layer key/value cache for batched incremental inference (SPEC B4, B5).

    ``lengths[b]`` is the number of timesteps row ``b`` has completed in its current episode;
    the next timestep is written at that slot. A step runs in two halves
    (:meth:`CausalTransformer.step_lower`, then :meth:`CausalTransformer.step_upper`);
    ``pending_layer`` records where the lower half stopped so the halves cannot be mismatched.
    """

    keys: list[Tensor]
    """Per block, ``(B, H, max_len, K)``."""
    values: list[Tensor]
    """Per block, ``(B, H, max_len, K)``."""
    lengths: Tensor
    """``(B,)`` long: completed timesteps per row."""
    pending_layer: int | None = None
    """Layer reached by a ``step_lower`` whose ``step_upper`` has not run yet."""
    pending_context: Tensor | None = None
    """``(B, H, 1, S)`` attention mask of the pending timestep, shared by both halves."""

    @property
    def max_len(self) -> int:
        return self.keys[0].shape[2] if self.keys else 0

    # reset_rows (InferenceState) only zeroes lengths: stale keys of a restarted row stay in
    # memory but are masked out and overwritten as its new episode proceeds.


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------


class CausalTransformer(ResidualStreamModel):
    """Observation-only causal transformer with action and next-observation heads (SPEC A§3).

    The residual stream can be read at every layer (``return_residuals``) and written at one
    layer by an explicit ``controller`` argument (SPEC A§3.4, A§5.1 item 7).
    """

    ACTION_METRIC = "action_accuracy"
    """The per-step action metric :meth:`loss` reports besides the NLLs."""
    OUTPUT = ModelOutput
    STEP_OUTPUT = StepOutput

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        if not isinstance(config, TransformerConfig):
            raise TypeError(f"config must be a TransformerConfig, got {type(config).__name__}")
        self.config = config
        if config.input_encoding == "egocentric":
            self.embed: nn.Module = EgocentricGridEmbedding(config.obs_dim, config.grid_size, config.width)
        else:
            self.embed = nn.Linear(config.obs_dim, config.width)
        self.relative_bias = RelativePositionBias(config)
        self.blocks = nn.ModuleList(TransformerBlock(config) for _ in range(config.n_layers))
        self.final_norm = nn.LayerNorm(config.width)
        self.action_head = nn.Linear(config.width, config.n_actions)
        self.next_obs_head = nn.Linear(config.width, config.obs_dim)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                variance_scaling_(module.weight)
                nn.init.zeros_(module.bias)

    def _heads(self, residual: Tensor) -> tuple[Tensor, Tensor]:
        hidden = self.final_norm(residual)  # (..., W)
        return self.action_head(hidden), self.next_obs_head(hidden)  # (..., A), (..., D)

    # -- hooks of ResidualStreamModel (the layer loops live there) ----------------------------

    def _embed(self, observations: Tensor) -> Tensor:
        return self.embed(observations)

    def _sequence_context(self, length: int) -> Tensor:
        return self.relative_bias.causal_mask(length)  # (1, H, T, T)

    def _run_block(self, depth: int, x: Tensor, context: Tensor) -> Tensor:
        return self.blocks[depth](x, context)

    def _step_context(self, state: KVCache) -> Tensor:
        longest = int(state.lengths.max())
        if longest >= state.max_len:
            raise ValueError(f"KV cache is full (max_len={state.max_len}); reset finished rows or allocate more")
        return self.relative_bias.step_mask(state.lengths, longest + 1)  # (B, H, 1, S)

    def _step_block(self, depth: int, x: Tensor, state: KVCache, context: Tensor) -> Tensor:
        return self.blocks[depth].step(x, state.keys[depth], state.values[depth], state.lengths, context)

    # -- incremental inference ----------------------------------------------------------------

    def init_cache(self, batch_size: int, max_len: int) -> KVCache:
        """Empty KV cache for ``batch_size`` parallel rows of up to ``max_len`` timesteps each."""
        for name, value in (("batch_size", batch_size), ("max_len", max_len)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        weight = self.embed.weight
        shape = (batch_size, self.config.n_heads, max_len, self.config.head_dim)
        return KVCache(
            keys=[weight.new_zeros(shape) for _ in range(self.n_layers)],
            values=[weight.new_zeros(shape) for _ in range(self.n_layers)],
            lengths=torch.zeros(batch_size, dtype=torch.long, device=weight.device),
        )

    def init_inference_state(self, batch_size: int, max_len: int) -> KVCache:
        """The incremental-inference state rollouts use (same name for both model families)."""
        return self.init_cache(batch_size, max_len)

    @staticmethod
    def select_action(output: StepOutput, generator: torch.Generator, greedy: bool = False) -> Tensor:
        """``(B,)`` actions: sampled from the categorical head, or its argmax if ``greedy``."""
        if greedy:
            return output.action_logits.argmax(-1)
        return torch.multinomial(torch.softmax(output.action_logits, -1), 1, generator=generator).squeeze(-1)

    @staticmethod
    def action_nll_per_step(output: ModelOutput | StepOutput, actions: Tensor) -> Tensor:
        """``-ln p(a_t | o_{1:t})`` per step, shape ``actions.shape`` (``(B, T)`` or ``(B,)``);
        padded actions may hold any valid id."""
        logits = output.action_logits  # (..., A)
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), actions.reshape(-1).long().clamp(min=0),
                              reduction="none")
        return nll.view(logits.shape[:-1])

    @staticmethod
    def action_entropy(output: ModelOutput | StepOutput) -> Tensor:
        """Entropy of the categorical action head per step, ``(...)``."""
        log_probs = torch.log_softmax(output.action_logits, -1)
        return -(log_probs.exp() * log_probs).sum(-1)

    def loss(self, output: ModelOutput, batch: Mapping[str, Tensor], obs_loss_weight: float) -> dict[str, Tensor]:
        """:func:`sequence_loss` on a batch from :func:`agents.pretrain.batch_tensors`."""
        return sequence_loss(output, batch["actions"], batch["next_observations"], batch["mask"], obs_loss_weight)



# ---------------------------------------------------------------------------------------------
# Loss
# ---------------------------------------------------------------------------------------------


def sequence_loss(
    output: ModelOutput,
    actions: Tensor,
    next_observations: Tensor,
    mask: Tensor,
    obs_loss_weight: float,
) -> dict[str, Tensor]:
    """Pretraining objective ``-ln p(a_t | o_{1:t}) - λ ln p(o_{t+1} | o_{1:t})`` (SPEC A§3.1).

    Actions are categorical (cross-entropy on the logits); the next observation is a product
    of Bernoullis over its binary bits (INFERRED), its NLL summed over ``D``. Both NLLs are
    averaged over the valid timesteps.

    Args:
        output: model output for ``o_{1:T}``.
        actions: ``(B, T)`` integer actions ``a_t``.
        next_observations: ``(B, T, D)`` targets ``o_{t+1}`` in ``{0, 1}``.
        mask: ``(B, T)`` bool, true at valid (non-padding) timesteps.
        obs_loss_weight: λ (grid paper sweep {0, 0.01}).

    Returns:
        ``loss`` (differentiable), ``action_nll``, ``obs_nll`` and ``action_accuracy``
        (scalar tensors; the last is a fraction of valid timesteps).
    """
    logits = output.action_logits  # (B, T, A)
    if actions.shape != logits.shape[:2]:
        raise ValueError(f"actions must have shape {tuple(logits.shape[:2])}, got {tuple(actions.shape)}")
    if actions.dtype.is_floating_point or actions.dtype == torch.bool:
        raise TypeError(f"actions must be an integer tensor, got {actions.dtype}")
    if next_observations.shape != output.next_obs_logits.shape:
        raise ValueError(
            f"next_observations must have shape {tuple(output.next_obs_logits.shape)}, "
            f"got {tuple(next_observations.shape)}"
        )
    if mask.shape != actions.shape or mask.dtype != torch.bool:
        raise ValueError(
            f"mask must be a bool tensor of shape {tuple(actions.shape)}, got {mask.dtype} {tuple(mask.shape)}"
        )
    if obs_loss_weight < 0:
        raise ValueError(f"obs_loss_weight must be >= 0, got {obs_loss_weight}")
    n_valid = mask.sum()
    if int(n_valid) == 0:
        raise ValueError("mask selects no timesteps")
    weights = mask.to(logits.dtype)  # (B, T)
    action_nll_t = F.cross_entropy(logits.flatten(0, 1), actions.flatten().long(), reduction="none")  # (B*T,)
    action_nll = (action_nll_t.view_as(weights) * weights).sum() / n_valid
    obs_nll_t = F.binary_cross_entropy_with_logits(
        output.next_obs_logits, next_observations.to(logits.dtype), reduction="none"
    ).sum(-1)  # (B, T)
    obs_nll = (obs_nll_t * weights).sum() / n_valid
    correct = (logits.argmax(-1) == actions).to(logits.dtype)  # (B, T)
    accuracy = (correct * weights).sum() / n_valid
    return {
        "loss": action_nll + obs_loss_weight * obs_nll,
        "action_nll": action_nll,
        "obs_nll": obs_nll,
        "action_accuracy": accuracy.detach(),
    }
