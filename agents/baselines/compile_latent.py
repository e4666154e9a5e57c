"""CompILE, adapted to generate the base model's controller codes (SPEC A§7.1 item 2, Tables A11/A12).

The CompILE baseline replaces the metacontroller (SPEC A§5) as the generator of controller codes
``z``; the same pretrained causal transformer is still steered *internally* by ``z`` through a
controller at layer L/2 emitted by a hypernetwork decoder, exactly as in SPEC A§5.1 items 6–7.
What changes is the inference network: CompILE (Kipf et al. 2019) splits each demonstration
into at most ``M`` segments with latent *boundaries* and gives every segment one latent *code*.

Inference network (Kipf et al. 2019, §3, adapted to state–action sequences, SPEC §9.2 item 16):

1. **Inputs** — raw observations, not the residual stream (SPEC A§7.1). Step ``t`` reads
   ``x_t = [LN(embed(o_t)), onehot(a_t), 0]``; one extra step ``x_n = [0, 0, 1]`` marks the end
   of an episode of ``n`` steps (CompILE's end-of-sequence token), so a boundary can be placed
   "after the last step". ``embed`` is a copy of the base model's input embedding, initialised
   from its pretrained weights and trained separately (INFERRED: SPEC A§7.1 says the encoder
   has "the same architecture as the first half of the sequence model"; the grid model's
   first half is a transformer, but CompILE's encoder must restart its state at every inferred
   boundary, which needs a recurrent state, so a GRU of the base model's width follows the
   copied embedding).
2. **Segment-wise encoding** — for segment ``k`` the GRU runs over the whole sequence with its
   state multiplied by the soft mask ``m_k(t) = Π_{j<k} C_j(t)``, the probability that step
   ``t`` lies past every earlier boundary (``C_j`` = inclusive cumulative sum of boundary
   ``j``'s distribution). The state therefore restarts at the previous boundary and the
   encoding at the end of segment ``k`` summarises that segment only.
3. **Boundaries** ``b_k`` (``k < M − 1``) — a categorical over positions ``p ∈ 1..n`` (a new
   segment starts at step ``p``; ``p = n`` means "no further segment"), with logits from a
   one-hidden-layer MLP (width 32) on the segment encoding ``h^k_p``. Position 0 and padded
   positions are masked (SPEC §9.2 item 16). Training draws a Gumbel-softmax relaxation
   (temperature 0.5 or 1, Table A11); evaluation takes the argmax. The last segment ends at
   ``n``.
4. **Codes** ``z_k ~ N(μ_k, σ²_k)``, ``n_z = 8`` — a one-hidden-layer MLP (width 32) on the
   encoding just before the boundary, ``Σ_p b_k(p) h^k_{p−1}`` (reparameterised).
5. **Segment masks** ``s_k(t) = m_k(t) − m_{k+1}(t)``: the probability that step ``t`` belongs
   to segment ``k``. They sum to one over segments at every valid step.

Decoder and controller (SPEC A§5.1 items 6–7): ``f_hyp(z)`` (one hidden layer of 32) emits the
low-rank (16) controller ``U = A Bᵀ`` (grid) or a full ``U`` (ant). Each step is controlled by
its segment's code through the soft masks, ``ê_t = Σ_k s_k(t) (e_t + U(z_k) e_t)``, one pass of
the upper blocks. INFERRED: CompILE mixes the per-segment *losses*; mixing the controlled
residuals instead keeps every step's attention context controlled by that step's own code, as it
is during internal-RL rollouts, and equals "each step uses its segment's code" whenever the
masks are hard.

Loss (CompILE's ELBO; Table A11 weights): action NLL of D* under the controlled base model
``+ α_z Σ_k KL(N(μ_k, σ²_k) ‖ N(0, I))`` (summed over the ``n_z`` dims and the ``M`` segments)
``+ α_β M · KL(q(b_0) ‖ Poisson(λ) truncated to 1..n)``. The boundary KL on the first segment
times ``M`` and the Poisson prior on segment length with rate λ = 10 (Table A11's "prior
switching rate", INFERRED to be the Poisson rate) follow Kipf et al.'s formulation; the prior is
normalised over each episode's valid lengths (SPEC §9.2 item 16). All three terms are summed
per episode and divided by the number of valid steps in the batch, i.e. CompILE's per-episode
loss divided by the mean episode length, so the α values keep their CompILE meaning. θ starts
from the pretrained weights and is trained jointly (SPEC A§7.1, INFERRED); λ = 0 (no
next-observation loss), as for the metacontroller (Table A9).

Internal RL (SPEC A§6) with CompILE's decoder as the action space. CompILE has no causal
switching unit. INFERRED rule: the policy emits a new code every ``steps_per_code`` steps
(``t = 0, k, 2k, …``), where ``k`` is :attr:`CompileConfig.rl_steps_per_code` if set, otherwise
the mean segment length CompILE infers on D* at the end of training (hard boundaries, stored
in the checkpoint). :meth:`CompileLatent.history_step` / :meth:`CompileLatent.switch_probability`
implement the rule with the same call signatures as the metacontroller's, so the internal-RL
environment can drive either; ``rl_steps_per_code = 1`` acts at every step.

A run directory holds ``latest.pt`` (resume), ``compile.pt`` (final, kind ``"compile_latent"``,
with the co-trained base model) and ``metrics.csv``.

Shape key: B batch, T time (padded), P = T + 1 boundary positions, M segments, W residual width,
A actions, H encoder width, Z = n_z, r controller rank, D observation size.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from agents.checkpoints import (
    CheckpointError,
    generator_state,
    load_checkpoint,
    load_model_state,
    module_fingerprint,
    save_checkpoint,
    set_generator_state,
)
from agents.lower_residuals import LowerResiduals
from agents.models.controller import CONTROLLER_KINDS, ControllerHypernetwork, freeze, variance_scaled_mlp
from agents.models.transformer import CausalTransformer, TransformerConfig
from agents.pretrain import LengthBucketSampler, batch_tensors, load_base_model
from agents.training_utils import (
    CsvLog, apply_gradients, check_numbers, check_positive_ints, check_same_config, check_same_inputs, run_training_loop,
    set_threads,
)
from hier_envs.datasets import EpisodeDataset

__all__ = [
    "COMPILE_KIND",
    "COMPILE_PRESETS",
    "CompileConfig",
    "CompileLatent",
    "CompileOutput",
    "CompileTrainConfig",
    "compile_loss",
    "load_compile",
    "mean_segment_length",
    "train_compile",
    "truncated_poisson_log_prior",
]

COMPILE_KIND = "compile_latent"
METRIC_FIELDS = ("step", "loss", "action_nll", "kl_z", "kl_b", "segments_per_episode", "elapsed_s")
NEG_INF = -1e9
"""Logit of a forbidden boundary position: finite, so ``q · log q`` stays 0 rather than NaN."""


@dataclass(frozen=True)
class CompileConfig:
    """CompILE architecture, loss weights and RL switching rule (SPEC A§7.1 item 2, Table A11)."""

    latent_dim: int = 8
    """n_z, size of each segment's Gaussian code (Table A11: 8, as the metacontroller)."""
    max_segments: int = 4
    """M, the maximum number of segments per episode (Table A11: 4)."""
    latent_hidden: int = 32
    """Hidden width of the one-hidden-layer MLPs for the boundary and code parameters (n_h = 32)."""
    encoder_size: int | None = None
    """Width of the recurrent encoder; ``None`` uses the base model's residual width (the encoder
    mirrors the first half of the sequence model, SPEC A§7.1)."""
    decoder_hidden: int = 32
    """Hidden width of the hypernetwork decoder (as Table A9)."""
    controller: Literal["low_rank", "linear"] = "low_rank"
    """Low-rank as Table A11 (grid). Table A12 gives the ant a full linear one, but this CompILE
    is grid-only (one-hot actions, categorical action NLL, a transformer backbone), and
    ``run_all.py`` runs it on the grid alone."""
    controller_rank: int = 16
    """Rank r of the low-rank controller (Table A11)."""
    kl_weight_z: float = 0.1
    """α_z on the code KL (paper sweep {0.003, 0.01, 0.03, 0.1, 0.3, 1}; value not reported)."""
    kl_weight_b: float = 0.1
    """α_β on the boundary KL (same sweep as α_z)."""
    gumbel_temperature: float = 1.0
    """Temperature of the Gumbel-softmax boundary relaxation (paper sweep {0.5, 1})."""
    prior_rate: float = 10.0
    """Rate λ of the truncated Poisson prior on segment length ("prior switching rate" 10)."""
    init_scale: float = 1.0
    """Variance-scaling factor of the MLP weights, as the metacontroller's ``init_scale`` (1.0: the
    initial controller update ``U e`` is then several times larger than ``e``, as there)."""
    rl_steps_per_code: int | None = None
    """Internal RL: steps each code is held. ``None`` uses the mean segment length inferred on D*
    at the end of training (INFERRED rule, module docstring); 1 acts at every step."""

    def __post_init__(self) -> None:
        check_positive_ints(self, ("latent_dim", "max_segments", "latent_hidden", "decoder_hidden", "controller_rank"))
        check_positive_ints(self, ("encoder_size", "rl_steps_per_code"), allow_none=True)
        if self.controller not in CONTROLLER_KINDS:
            raise ValueError(f"CompileConfig.controller must be {' or '.join(map(repr, CONTROLLER_KINDS))}, "
                             f"got {self.controller!r}")
        for name in ("kl_weight_z", "kl_weight_b"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0):
                raise ValueError(f"CompileConfig.{name} must be a number >= 0, got {value!r}")
        for name in ("gumbel_temperature", "prior_rate", "init_scale"):
            value = getattr(self, name)
            is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not (is_number and math.isfinite(value) and value > 0):
                raise ValueError(f"CompileConfig.{name} must be a finite number > 0, got {value!r}")

    @property
    def history_size(self) -> int:
        """Size of the RL switching state (a step counter), named as the metacontroller's."""
        return 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def truncated_poisson_log_prior(lengths: Tensor, n_positions: int, rate: float) -> Tensor:
    """Log prior of the first boundary position, ``(B, P)``: Poisson(``rate``) over segment
    lengths ``1..n`` normalised per episode of ``n = lengths[b]`` steps (SPEC §9.2 item 16);
    positions 0 and ``> n`` get :data:`NEG_INF`."""
    positions = torch.arange(n_positions, dtype=torch.float32)  # (P,)
    unnormalised = positions * math.log(rate) - rate - torch.lgamma(positions + 1.0)  # (P,)
    allowed = _allowed_positions(lengths, n_positions)  # (B, P)
    logits = unnormalised[None].expand(len(lengths), -1).masked_fill(~allowed, NEG_INF)
    return torch.log_softmax(logits, -1).masked_fill(~allowed, NEG_INF)


def _allowed_positions(lengths: Tensor, n_positions: int) -> Tensor:
    """``(B, P)`` bool: where a boundary may go, ``1 ≤ p ≤ n`` (never before the first step)."""
    positions = torch.arange(n_positions)
    return (positions[None] >= 1) & (positions[None] <= lengths[:, None])


@dataclass
class CompileOutput:
    """CompILE's inference for a batch of episodes (module docstring, items 3–5)."""

    segment_masks: Tensor
    """``(B, M, T)`` probability that step t belongs to segment k; sums to 1 over k on valid steps."""
    boundaries: Tensor
    """``(B, M, P)`` boundary distributions (soft samples in training, one-hot in evaluation)."""
    codes: Tensor
    """``(B, M, Z)`` segment codes ``z_k``."""
    mean: Tensor
    """``(B, M, Z)`` code means μ_k."""
    log_var: Tensor
    """``(B, M, Z)`` code log-variances."""
    kl_z: Tensor
    """``(B,)`` Σ_k KL(N(μ_k, σ²_k) ‖ N(0, I)), summed over Z."""
    kl_b: Tensor
    """``(B,)`` M · KL(q(b_0) ‖ truncated Poisson)."""


class CompileLatent(nn.Module):
    """CompILE inference network + hypernetwork decoder for a given base model (module docstring).

    The base model is *not* a submodule: it is passed to :meth:`__init__` only to copy its input
    embedding and read its sizes, and trained (or frozen) alongside by :func:`train_compile`.
    """

    def __init__(self, base_model: CausalTransformer, config: CompileConfig) -> None:
        super().__init__()
        if not isinstance(config, CompileConfig):
            raise TypeError(f"config must be a CompileConfig, got {type(config).__name__}")
        base_config = base_model.config
        self.config = config
        self.width = base_config.width
        self.n_actions = base_config.n_actions
        c = config
        encoder_size = c.encoder_size or self.width
        # 1. inputs: a trainable copy of the base model's (pretrained) input embedding
        self.obs_embed = copy.deepcopy(base_model.embed).requires_grad_(True)
        self.embed_norm = nn.LayerNorm(self.width, elementwise_affine=False)
        # 2. segment-wise recurrent encoder (its cell's weights, stepped by masked_encode)
        self.encoder = nn.GRUCell(self.width + self.n_actions + 1, encoder_size)
        # 3./4. boundary logits and code parameters
        self.boundary_head = variance_scaled_mlp(encoder_size, c.latent_hidden, 1, c.init_scale)
        self.latent_head = variance_scaled_mlp(encoder_size, c.latent_hidden, 2 * c.latent_dim, c.init_scale)
        # decoder (hypernetwork), as SPEC A§5.1 item 6
        self.decoder = ControllerHypernetwork(c.latent_dim, c.decoder_hidden, self.width, c.controller,
                                              c.controller_rank, c.init_scale)
        # mean segment length on D* (hard boundaries), set at the end of training; RL rule
        self.register_buffer("inferred_segment_length", torch.tensor(float(c.prior_rate)))

    # ------------------------------------------------------------------ inference network
    def encoder_inputs(self, observations: Tensor, actions: Tensor, mask: Tensor) -> Tensor:
        """``x_{0..T}``, ``(B, P, W + A + 1)``: embedded step inputs, then the end marker at ``n``.

        Actions are discrete (one-hot), as the grid base model's; the ant would concatenate them.
        """
        batch, steps = mask.shape
        valid = mask.to(observations.dtype)[..., None]  # (B, T, 1)
        embedded = self.embed_norm(self.obs_embed(observations)) * valid  # (B, T, W)
        one_hot = F.one_hot(actions.clamp(min=0), self.n_actions).to(observations.dtype) * valid  # (B, T, A)
        inputs = torch.cat([embedded, one_hot, torch.zeros_like(valid)], -1)  # (B, T, W+A+1)
        inputs = F.pad(inputs, (0, 0, 0, 1))  # (B, P, W+A+1)
        end = torch.zeros_like(inputs)
        end[torch.arange(batch), mask.sum(1), -1] = 1.0
        return inputs + end

    def masked_encode(self, inputs: Tensor, reset_mask: Tensor) -> Tensor:
        """``h_t = m_t · GRU(x_t, h_{t−1})``, ``h_{−1} = 0``, for ``x (B, P, ·)`` and ``m (B, P)``:
        ``(B, P, H)``. Equal to stepping :attr:`encoder` (an ``nn.GRUCell``) with the state
        rescaled after every step (Kipf et al.); the input projection is computed once."""
        cell = self.encoder
        input_gates = F.linear(inputs, cell.weight_ih, cell.bias_ih)  # (B, P, 3H)
        hidden = inputs.new_zeros(inputs.shape[0], cell.hidden_size)  # (B, H)
        states = []
        for t in range(inputs.shape[1]):
            hidden_gates = F.linear(hidden, cell.weight_hh, cell.bias_hh)  # (B, 3H)
            in_r, in_z, in_n = input_gates[:, t].chunk(3, -1)
            h_r, h_z, h_n = hidden_gates.chunk(3, -1)
            reset = torch.sigmoid(in_r + h_r)
            update = torch.sigmoid(in_z + h_z)
            candidate = torch.tanh(in_n + reset * h_n)
            hidden = ((1.0 - update) * candidate + update * hidden) * reset_mask[:, t, None]  # (B, H)
            states.append(hidden)
        return torch.stack(states, 1)  # (B, P, H)

    def forward(
        self, observations: Tensor, actions: Tensor, mask: Tensor,
        generator: torch.Generator | None = None, sample: bool = True,
    ) -> CompileOutput:
        """Segment right-padded episodes ``o (B, T, D)``, ``a (B, T)``, ``mask (B, T)``.

        ``sample=True`` (training): Gumbel-softmax boundaries and reparameterised codes, noise from
        ``generator``. ``sample=False`` (analysis): argmax boundaries and ``z = μ``.
        """
        if observations.dim() != 3 or actions.shape != mask.shape or observations.shape[:2] != mask.shape:
            raise ValueError(
                f"expected observations (B, T, D), actions and mask (B, T); got {tuple(observations.shape)}, "
                f"{tuple(actions.shape)}, {tuple(mask.shape)}"
            )
        lengths = mask.sum(1)  # (B,)
        if int(lengths.min()) < 1:
            raise ValueError("every episode needs at least one valid step")
        c = self.config
        inputs = self.encoder_inputs(observations, actions, mask)  # (B, P, W+A+1)
        batch, n_positions = inputs.shape[:2]
        allowed = _allowed_positions(lengths, n_positions)  # (B, P)
        reset_mask = inputs.new_ones(batch, n_positions)  # m_0 = 1
        masks, boundaries, means, log_vars, codes = [], [], [], [], []
        first_logits = None
        for k in range(c.max_segments):
            states = self.masked_encode(inputs, reset_mask)  # (B, P, H)
            if k < c.max_segments - 1:
                logits = self.boundary_head(states).squeeze(-1).masked_fill(~allowed, NEG_INF)  # (B, P)
                if k == 0:
                    first_logits = logits
                if sample:
                    boundary = _gumbel_softmax(logits, c.gumbel_temperature, generator)  # (B, P)
                else:
                    boundary = F.one_hot(logits.argmax(-1), n_positions).to(inputs.dtype)
            else:  # the last segment ends after the last step
                boundary = F.one_hot(lengths, n_positions).to(inputs.dtype)  # (B, P)
            readout = torch.einsum("bp,bph->bh", boundary[:, 1:], states[:, :-1])  # (B, H)
            mean, log_var = self.latent_head(readout).chunk(2, -1)  # (B, Z) each
            if sample:
                noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
                code = mean + torch.exp(0.5 * log_var) * noise  # (B, Z)
            else:
                code = mean
            next_reset = reset_mask * torch.cumsum(boundary, -1).clamp(max=1.0)  # m_{k+1} (B, P)
            masks.append(reset_mask - next_reset)
            boundaries.append(boundary)
            means.append(mean)
            log_vars.append(log_var)
            codes.append(code)
            reset_mask = next_reset
        mean, log_var = torch.stack(means, 1), torch.stack(log_vars, 1)  # (B, M, Z)
        kl_z = 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var).sum((1, 2))  # (B,)
        if first_logits is None:  # M = 1: one segment, no boundary to infer
            kl_b = torch.zeros(batch, dtype=inputs.dtype)
        else:
            log_q = torch.log_softmax(first_logits, -1)  # (B, P)
            log_prior = truncated_poisson_log_prior(lengths, n_positions, c.prior_rate)  # (B, P)
            kl_first = (log_q.exp() * (log_q - log_prior)).masked_fill(~allowed, 0.0).sum(-1)  # (B,)
            kl_b = c.max_segments * kl_first
        return CompileOutput(
            segment_masks=torch.stack(masks, 1)[..., :-1],  # (B, M, T)
            boundaries=torch.stack(boundaries, 1),  # (B, M, P)
            codes=torch.stack(codes, 1), mean=mean, log_var=log_var, kl_z=kl_z, kl_b=kl_b,
        )

    # ------------------------------------------------------------------ decoder and controller
    def decode(self, z: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        """Controller parameters for codes ``(..., Z)``: ``(A, B)`` of ``(..., W, r)``, or ``U (..., W, W)``."""
        return self.decoder.decode(z)

    def apply_controller(self, residual: Tensor, z: Tensor) -> Tensor:
        """``ê = e + U(z) e`` (Eq. 11) for matching leading dims; same signature as the metacontroller's."""
        return self.decoder.control(residual, z)

    def controlled_residual(self, residual: Tensor, output: CompileOutput) -> Tensor:
        """``ê_t = Σ_k s_k(t) (e_t + U(z_k) e_t)`` for ``e (B, T, W)``: ``(B, T, W)``."""
        per_segment = self.apply_controller(residual[:, None], output.codes[:, :, None])  # (B, M, T, W)
        return (output.segment_masks[..., None] * per_segment).sum(1)  # (B, T, W)

    # ------------------------------------------------------------------ internal RL
    @property
    def steps_per_code(self) -> int:
        """Steps a code is held during internal RL (module docstring; INFERRED rule)."""
        if self.config.rl_steps_per_code is not None:
            return self.config.rl_steps_per_code
        return max(1, int(round(float(self.inferred_segment_length))))

    def history_step(self, residual_t: Tensor, state: Tensor) -> Tensor:
        """Switching state after one step: a step counter, ``(B, 1)`` (metacontroller signature)."""
        return state + 1.0

    def switch_probability(self, residual_t: Tensor, history_prev: Tensor, z_prev: Tensor) -> Tensor:
        """β_t ∈ {0, 1}, ``(B,)``: 1 at steps ``0, k, 2k, …`` for ``k = steps_per_code`` (metacontroller API)."""
        steps_taken = history_prev[:, 0].round().long()  # (B,)
        return (steps_taken % self.steps_per_code == 0).to(residual_t.dtype)


def _gumbel_softmax(logits: Tensor, temperature: float, generator: torch.Generator | None) -> Tensor:
    """Relaxed one-hot sample with noise from ``generator`` (``F.gumbel_softmax`` takes none)."""
    uniform = torch.rand(logits.shape, generator=generator, dtype=logits.dtype).clamp(1e-10, 1.0 - 1e-7)
    return torch.softmax((logits - torch.log(-torch.log(uniform))) / temperature, -1)


def compile_loss(
    action_logits: Tensor, actions: Tensor, mask: Tensor, output: CompileOutput, kl_weight_z: float, kl_weight_b: float
) -> dict[str, Tensor]:
    """Action NLL + α_z KL_z + α_β KL_β, summed per episode over the batch, per valid step (module docstring).

    Reported ``action_nll`` is per valid step; ``kl_z`` and ``kl_b`` per episode;
    ``segments_per_episode`` counts segments holding at least half a step.
    """
    weights = mask.to(action_logits.dtype)  # (B, T)
    n_valid = weights.sum()
    nll = F.cross_entropy(action_logits.flatten(0, 1), actions.flatten().clamp(min=0), reduction="none")
    nll_total = (nll.view_as(weights) * weights).sum()
    loss = (nll_total + kl_weight_z * output.kl_z.sum() + kl_weight_b * output.kl_b.sum()) / n_valid
    occupancy = (output.segment_masks * weights[:, None]).sum(-1)  # (B, M)
    segments = (occupancy >= 0.5).to(weights.dtype).sum(1).mean()
    return {"loss": loss, "action_nll": nll_total / n_valid, "kl_z": output.kl_z.mean(), "kl_b": output.kl_b.mean(),
            "segments_per_episode": segments}


@torch.no_grad()
def mean_segment_length(model: CompileLatent, dataset: EpisodeDataset, indices: np.ndarray, chunk: int = 256) -> float:
    """Valid steps per non-empty segment over ``indices``, with argmax boundaries (the RL hold length)."""
    steps, segments = 0.0, 0.0
    for start in range(0, len(indices), chunk):
        batch = batch_tensors(dataset, indices[start : start + chunk])
        output = model(batch["observations"], batch["actions"], batch["mask"], sample=False)
        occupancy = output.segment_masks.sum(-1)  # (B, M) whole steps per segment
        steps += float(batch["mask"].sum())
        segments += float((occupancy >= 0.5).sum())
    return steps / segments


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompileTrainConfig:
    """CompILE training (SPEC A§7.1 item 2, Table A11; presets SPEC B5)."""

    model: CompileConfig = field(default_factory=CompileConfig)
    """Architecture, α_z, α_β, temperature and prior."""
    train_steps: int = 2000
    """Optimiser steps (paper: 32,000)."""
    batch_size: int = 128
    """Episodes per batch (paper: 512 grid, 128 ant)."""
    learning_rate: float = 1e-3
    """AdamW learning rate, constant (Table A11; ant 3e-4)."""
    weight_decay: float = 0.03
    """AdamW weight decay (Table A11)."""
    cotrain_base_model: bool = True
    """θ starts from the pretrained weights and is trained jointly (SPEC A§7.1, INFERRED); False
    freezes it as for the metacontroller."""
    log_every: int = 100
    """Steps between metric rows."""
    checkpoint_every: int = 200
    """Steps between rolling checkpoints."""
    length_buckets: int = 8
    """Length-bucketed batches, as in pretraining."""
    segment_length_episodes: int = 1024
    """Episodes of D* (the first ones) segmented at the end to set the RL hold length."""
    seed: int = 0
    """Seeds initialisation, batches and the Gumbel / reparameterisation noise."""
    num_threads: int = 2
    """torch intra-op threads."""

    def __post_init__(self) -> None:
        if not isinstance(self.model, CompileConfig):
            raise TypeError(f"CompileTrainConfig.model must be a CompileConfig, got {type(self.model).__name__}")
        check_positive_ints(self, ("train_steps", "batch_size", "log_every", "checkpoint_every", "length_buckets",
                                   "segment_length_episodes", "num_threads"))
        check_numbers(self, {"learning_rate": "> 0", "weight_decay": ">= 0"})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


COMPILE_PRESETS: dict[str, CompileTrainConfig] = {
    "smoke": CompileTrainConfig(
        train_steps=30, batch_size=16, log_every=10, checkpoint_every=10, segment_length_episodes=64, num_threads=1
    ),
    "default": CompileTrainConfig(),
    "paper": CompileTrainConfig(train_steps=32_000, batch_size=512, log_every=1000, checkpoint_every=2000),
}
"""Named CompILE configurations (SPEC B5): ``paper`` is Table A11 (grid)."""


def load_compile(path: str | Path) -> tuple[CompileLatent, CausalTransformer]:
    """Load ``compile.pt`` (or ``latest.pt``): the CompILE model and the base model trained with it."""
    record = load_checkpoint(path, expected_kind=COMPILE_KIND)
    try:
        config = CompileConfig(**record["config"]["model"])
        base_model = CausalTransformer(TransformerConfig.from_dict(record["base_model_config"]))
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: CompILE checkpoint has no valid config ({error})") from error
    load_model_state(base_model, record["base_model"], path)
    model = CompileLatent(base_model, config)
    load_model_state(model, record["model"], path)
    return model, base_model


def train_compile(
    base_model_path: str | Path,
    dstar: EpisodeDataset,
    config: CompileTrainConfig,
    run_dir: str | Path,
    *,
    stop_after: int | None = None,
    progress: bool = True,
) -> Path:
    """Train (or resume) CompILE jointly with the base model on D*; returns the path of ``compile.pt``.

    Each step: the base model's lower blocks give ``e_{1:T,l}``; CompILE segments the raw
    episode and its decoder controls ``e`` segment by segment; the upper blocks give the action
    logits; :func:`compile_loss` is minimised with AdamW over CompILE's parameters and θ. Every
    random draw comes from checkpointed generators, so an interrupted and resumed run ends with
    the same weights as an uninterrupted one (SPEC B4). ``stop_after`` ends early (returning
    ``latest.pt``), for tests.
    """
    set_threads(config.num_threads)
    run_dir = Path(run_dir)
    final_path, latest_path = run_dir / "compile.pt", run_dir / "latest.pt"
    config_dict = config.to_dict()
    base_model = load_base_model(base_model_path)
    # what the config does not say: the data and the pretrained backbone it starts from
    inputs = {"dataset_sha256": dstar.sha256, "base_model_fingerprint": module_fingerprint(base_model)}
    if final_path.exists():
        record = load_checkpoint(final_path, expected_kind=COMPILE_KIND)
        check_same_config(final_path, record, config_dict, "CompileTrainConfig")
        check_same_inputs(final_path, record, inputs)
        return final_path
    layer = base_model.config.controlled_layer
    torch.manual_seed(config.seed)
    model = CompileLatent(base_model, config.model)
    trainable = list(model.parameters())
    if config.cotrain_base_model:
        base_model.train()
        trainable += list(base_model.parameters())
    else:
        freeze(base_model)
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
    batch_rng = np.random.default_rng([config.seed, 43])
    noise = torch.Generator().manual_seed(config.seed + 1)
    sampler = LengthBucketSampler(np.arange(dstar.n_episodes), dstar.episode_lengths, config.length_buckets)
    log = CsvLog(run_dir / "metrics.csv", METRIC_FIELDS)
    step, elapsed = 0, 0.0
    if latest_path.exists():
        record = load_checkpoint(latest_path, expected_kind=COMPILE_KIND)
        check_same_config(latest_path, record, config_dict, "CompileTrainConfig")
        check_same_inputs(latest_path, record, inputs)
        load_model_state(model, record["model"], latest_path)
        load_model_state(base_model, record["base_model"], latest_path)
        optimizer.load_state_dict(record["optimizer"])
        set_generator_state(batch_rng, record["batch_rng"])
        set_generator_state(noise, record["noise"])
        step, elapsed = record["step"], record["elapsed_s"]
    log.truncate_after(step)

    def checkpoint(path: Path, step: int, elapsed: float) -> None:
        save_checkpoint(path, {
            "kind": COMPILE_KIND, "model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
            "config": config_dict, "batch_rng": generator_state(batch_rng), "noise": generator_state(noise),
            "elapsed_s": elapsed, "controlled_layer": layer, **inputs,
            "base_model": base_model.state_dict(), "base_model_config": base_model.config.to_dict(),
            "base_model_path": str(base_model_path),
        })

    weights = config.model

    # the frozen base model's lower half once per dataset; co-trained, it changes every step
    lower_residuals = None if config.cotrain_base_model else LowerResiduals(base_model, dstar, layer)

    def train_step(step: int) -> dict[str, torch.Tensor]:
        indices = sampler.sample(batch_rng, config.batch_size)
        batch = batch_tensors(dstar, indices)
        output = model(batch["observations"], batch["actions"], batch["mask"], generator=noise)
        if lower_residuals is None:
            residual = base_model.forward_lower(batch["observations"], layer)  # (B, T, W)
        else:
            residual = lower_residuals(indices, batch)  # (B, T, W)
        logits = base_model.forward_upper(model.controlled_residual(residual, output), layer).action_logits  # (B, T, A)
        losses = compile_loss(logits, batch["actions"], batch["mask"], output, weights.kl_weight_z, weights.kl_weight_b)
        return apply_gradients(optimizer, losses)

    step, elapsed = run_training_loop(
        train_step, step=step, total_steps=config.train_steps, stop_after=stop_after, elapsed=elapsed,
        window_keys=METRIC_FIELDS[1:-1], log_every=config.log_every, log=log, checkpoint=checkpoint,
        latest_path=latest_path, checkpoint_every=config.checkpoint_every, desc="compile", progress=progress,
        postfix={"nll": "action_nll", "kl_z": "kl_z", "segments": "segments_per_episode"},
    )
    if step < config.train_steps:
        return latest_path
    n_episodes = min(config.segment_length_episodes, dstar.n_episodes)
    model.inferred_segment_length.fill_(mean_segment_length(model, dstar, np.arange(n_episodes)))
    checkpoint(final_path, step, elapsed)
    return final_path
