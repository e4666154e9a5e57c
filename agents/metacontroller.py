"""The metacontroller: a stochastic recurrent hypernetwork that steers a frozen base model.

Components, in the order of SPEC A§5.1 (sizes Table A9; shape key below):

1. **Internal sequence embedder** ``f_emb`` — *non-causal*: a bidirectional GRU reads the whole
   residual sequence ``e_{1:T,l}``; by default its final forward and backward states are
   projected to one ``s ∈ R^{n_s}`` per sequence, broadcast to every step — the reading of
   ``s(e_{1:T,l})`` and "a first pass through the entire sequence" that SPEC A§5.1 marks as
   INFERRED. A sequence-level summary can carry which subgoals an episode contains but not
   every step's action, which is what makes subgoal-level codes cheaper than per-step ones.
   ``embedding="per_step"`` instead gives each step the concatenated forward/backward outputs
   (the alternative SPEC A§5.1 lists). The paper uses Hawk layers and does not give L_emb
   (SPEC §9.1 item 4); ``nn.GRU`` is the recurrent block here. Padded steps are never read
   (sequences are packed).
2. **History GRU** ``h_t = GRU(e_{t,l}, h_{t-1})``, ``n_h = 32`` (Eq. 12); ``h_0 = 0``.
3. **Controller encoder** ``(μ_t, log σ²_t) = f_enc(e_t, h_{t-1}, s_t)``: one hidden layer of 64
   (Eq. 15); ``z̃_t = μ_t + σ_t ⊙ ε_t`` (reparameterised), ``n_z = 8``.
4. **Switching unit** ``β_t = σ(f_switch(e_t, h_{t-1}, z_{t-1}))`` ∈ [0, 1] (Eq. 16): causal, it
   never sees ``s``. Hidden width 64 (INFERRED, §9.1 item 5). ``β_1`` is forced to 1 so the
   first code always comes from the encoder / the RL policy (INFERRED, §9.2 item 4).
5. **Temporal integration** ``z_t = β_t z̃_t + (1 − β_t) z_{t−1}`` (Eq. 2/17), ``z_0 = 0``
   (INFERRED). β = 1 takes the new code, β = 0 holds the old one (§9.2 item 2); the hold path
   is *not* detached, since β learns only through it (§9.2 item 3).
6. **Decoder (hypernetwork)** ``f_hyp(z_t)`` with one hidden layer of 32 (Eq. 18) emits the
   controller: low-rank ``U_t = A_t B_tᵀ`` (grid, rank 16) or full ``U_t`` (ant, Table A10).
7. **Internal controller** ``ê_{t,l} = e_{t,l} + U_t e_{t,l}`` (Eq. 11), computed as
   ``A_t (B_tᵀ e)`` without forming ``U_t`` (§9.2 item 1), fed to the frozen upper blocks.

Implementation choices the paper leaves open (INFERRED): the metacontroller reads the residual
through a parameter-free LayerNorm (the stream is small after the 0.1 variance-scaling
initialisation of the base model; the controller itself acts on the raw residual), and its MLPs
use variance scaling ``init_scale`` = 1.0 so that the hypernetwork's output depends on ``z`` at
initialisation.

Loss (SPEC A§5.2, Eq. 3): action NLL + α · KL(N(μ_t, σ²_t) ‖ N(0, I)), the KL summed over the
``n_z`` dimensions, *not* weighted by β, averaged over valid timesteps (§9.2 item 5); λ = 0.
The base model is frozen (§9.2 item 7).

For internal RL (SPEC A§6) the encoder is dropped and the history GRU, switching unit and
decoder run one step at a time: :meth:`Metacontroller.history_step`,
:meth:`Metacontroller.switch_probability` and :meth:`Metacontroller.decode` reproduce the
training-time computation exactly (tested).

Shape key: B batch, T time, W residual width, Z = n_z, H = n_h, S = n_s, r controller rank.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from agents.models.controller import CONTROLLER_KINDS, ControllerHypernetwork, variance_scaled_mlp
from agents.training_utils import check_numbers, check_positive_ints

SWITCH_THRESHOLD = 0.5
"""β at or above this counts as a switch: in the analysis and in internal RL (SPEC A§6, C.6)."""


@dataclass(frozen=True)
class MetacontrollerConfig:
    """Metacontroller architecture and loss weight (SPEC A§5.1–5.2, Table A9 / A10)."""

    latent_dim: int = 8
    """n_z, size of the controller code (Table A9: 8; larger changes the bottleneck, §9.2 item 15)."""
    history_size: int = 32
    """n_h, history GRU state (Table A9)."""
    embedding_size: int = 32
    """n_s, sequence-embedding size (Table A9)."""
    embedding: Literal["sequence", "per_step"] = "sequence"
    """One embedding per sequence broadcast over time (default), or one per step (SPEC A§5.1)."""
    encoder_hidden: int = 64
    """Hidden width of the controller encoder (Table A9)."""
    decoder_hidden: int = 32
    """Hidden width of the hypernetwork decoder (Table A9)."""
    switch_hidden: int = 64
    """Hidden width of the switching unit (not given in the paper; INFERRED)."""
    controller: Literal["low_rank", "linear"] = "low_rank"
    """Grid: low-rank; ant: full linear (Tables A9/A10)."""
    controller_rank: int = 16
    """Rank r of the low-rank controller (Table A9)."""
    kl_weight: float = 0.1
    """α on the KL term (paper sweep {0, 0.05, 0.1, 0.17, 0.3, 0.5, 1}; value chosen by the
    switching analysis here, SPEC A§5.2)."""
    force_switch: bool = False
    """β ≡ 1 ablation: no temporal abstraction (SPEC A§7.1 item 3)."""
    init_scale: float = 1.0
    """Variance-scaling factor of the metacontroller's MLP weights. Table A9 gives none (the 0.1
    of Tables A15/A16 is stated for the sequence models); with 0.1 the hypernetwork's output
    hardly depends on z at initialisation and CPU-sized runs never leave the uninformative code
    (INFERRED)."""
    encoder_log_var_init: float = 0.0
    """Initial bias of the encoder's log-variance output (0 → σ = 1, the prior; INFERRED)."""
    switch_gumbel_temperature: float = 0.0
    """> 0: during training with sampled codes, β_t is a Gumbel-Sigmoid (binary-concrete) sample
    ``σ((logit_t + L_t) / τ)``, ``L_t ~ Logistic(0, 1)``, as the paper does for its gridworld
    rate–distortion runs (SPEC A§5.2, A§5.4). 0 (default): deterministic β = σ(logit), the main
    text's choice. Analysis (``sample=False``) and internal RL always use the deterministic β."""
    switch_bias_init: float = 0.0
    """Initial bias of the switching unit's output logit (0 → β ≈ 0.5; INFERRED, the paper is
    silent on the switching unit's initialisation)."""

    def __post_init__(self) -> None:
        check_positive_ints(self, ("latent_dim", "history_size", "embedding_size", "encoder_hidden", "decoder_hidden",
                                   "switch_hidden", "controller_rank"))
        if self.embedding not in ("sequence", "per_step"):
            raise ValueError(f"MetacontrollerConfig.embedding must be 'sequence' or 'per_step', got {self.embedding!r}")
        if self.controller not in CONTROLLER_KINDS:
            raise ValueError(f"MetacontrollerConfig.controller must be {' or '.join(map(repr, CONTROLLER_KINDS))}, "
                             f"got {self.controller!r}")
        check_numbers(self, {"switch_gumbel_temperature": ">= 0", "kl_weight": ">= 0", "init_scale": "> 0",
                             "encoder_log_var_init": "finite", "switch_bias_init": "finite"})
        if not isinstance(self.force_switch, bool):
            raise TypeError(f"MetacontrollerConfig.force_switch must be a bool, got {self.force_switch!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class MetacontrollerOutput:
    """Per-timestep quantities of a training-time pass."""

    controlled: Tensor
    """``(B, T, W)`` residual after the controller."""
    beta: Tensor
    """``(B, T)`` switching probabilities (β_1 = 1)."""
    z: Tensor
    """``(B, T, Z)`` integrated codes."""
    z_tilde: Tensor
    """``(B, T, Z)`` sampled encoder codes."""
    mean: Tensor
    """``(B, T, Z)`` encoder means μ."""
    log_var: Tensor
    """``(B, T, Z)`` encoder log-variances."""
    kl: Tensor
    """``(B, T)`` KL(N(μ, σ²) ‖ N(0, I)) summed over Z."""


class Metacontroller(nn.Module):
    """Non-causal encoder + causal switching unit + hypernetwork decoder (SPEC A§5.1)."""

    def __init__(self, width: int, config: MetacontrollerConfig) -> None:
        super().__init__()
        self.width = width
        self.config = config
        c = config
        # The metacontroller *reads* a normalised residual (the stream is small after the 0.1
        # variance-scaling initialisation); the controller still acts on the raw residual.
        self.input_norm = nn.LayerNorm(width, elementwise_affine=False)
        # 1. internal sequence embedder (non-causal)
        self.embedder = nn.GRU(width, c.embedding_size, batch_first=True, bidirectional=True)
        self.embedder_out = nn.Linear(2 * c.embedding_size, c.embedding_size)
        # 2. history GRU
        self.history = nn.GRU(width, c.history_size, batch_first=True)
        # 3. controller encoder
        self.encoder = variance_scaled_mlp(
            width + c.history_size + c.embedding_size, c.encoder_hidden, 2 * c.latent_dim, c.init_scale
        )
        # 4. switching unit
        self.switch = variance_scaled_mlp(width + c.history_size + c.latent_dim, c.switch_hidden, 1, c.init_scale)
        nn.init.constant_(self.switch[-1].bias, c.switch_bias_init)
        nn.init.constant_(self.encoder[-1].bias[c.latent_dim :], c.encoder_log_var_init)
        # 6. hypernetwork decoder
        self.decoder = ControllerHypernetwork(c.latent_dim, c.decoder_hidden, width, c.controller, c.controller_rank,
                                              c.init_scale)

    # ---------------------------------------------------------------- pieces
    def embed_sequence(self, residual: Tensor, lengths: Tensor) -> Tensor:
        """``s`` for every step, from the whole (valid part of the) sequence. ``(B, T, S)``."""
        packed = pack_padded_sequence(self.input_norm(residual), lengths.cpu(), batch_first=True, enforce_sorted=False)
        output, final = self.embedder(packed)  # final: (2, B, S), forward and backward directions
        if self.config.embedding == "sequence":
            summary = self.embedder_out(torch.cat([final[0], final[1]], -1))  # (B, S)
            return summary[:, None].expand(-1, residual.shape[1], -1)
        output, _ = pad_packed_sequence(output, batch_first=True, total_length=residual.shape[1])  # (B, T, 2S)
        return self.embedder_out(output)

    def history_states(self, residual: Tensor) -> Tensor:
        """``h_{t-1}`` for every ``t`` (``h_0 = 0``): ``(B, T, H)``."""
        states, _ = self.history(self.input_norm(residual))  # h_1..h_T
        return F.pad(states, (0, 0, 1, 0))[:, :-1]

    def history_step(self, residual_t: Tensor, state: Tensor) -> Tensor:
        """One history-GRU step: ``h_t`` from ``e_t`` (``(B, W)``) and ``h_{t-1}`` (``(B, H)``)."""
        _, new_state = self.history(self.input_norm(residual_t)[:, None], state[None])
        return new_state[0]

    def encode(self, residual: Tensor, history_prev: Tensor, embedding: Tensor) -> tuple[Tensor, Tensor]:
        """Encoder mean and log-variance, ``(..., Z)`` each."""
        mean, log_var = self.encoder(torch.cat([self.input_norm(residual), history_prev, embedding], -1)).chunk(2, -1)
        return mean, log_var

    def switch_probability(
        self, residual_t: Tensor, history_prev: Tensor, z_prev: Tensor, noise: Tensor | None = None
    ) -> Tensor:
        """β_t = f_switch(e_t, h_{t-1}, z_{t-1}) ∈ [0, 1], ``(B,)`` (Eq. 16).

        ``noise`` (``(B,)`` logistic samples) turns it into a Gumbel-Sigmoid sample at the
        configured temperature (training only, see ``switch_gumbel_temperature``).
        """
        if self.config.force_switch:
            return torch.ones(residual_t.shape[0], dtype=residual_t.dtype, device=residual_t.device)
        features = torch.cat([self.input_norm(residual_t), history_prev, z_prev], -1)
        logit = self.switch(features).squeeze(-1)  # (B,)
        if noise is not None:
            return torch.sigmoid((logit + noise) / self.config.switch_gumbel_temperature)
        return torch.sigmoid(logit)

    def decode(self, z: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        """Controller parameters for codes ``(..., Z)``: ``(A, B)`` of ``(..., W, r)``, or ``U (..., W, W)``."""
        return self.decoder.decode(z)

    def apply_controller(self, residual: Tensor, z: Tensor) -> Tensor:
        """``ê = e + U(z) e`` (Eq. 11) for matching leading dims."""
        return self.decoder.control(residual, z)

    # -------------------------------------------------------------- training
    def forward(
        self, residual: Tensor, mask: Tensor, generator: torch.Generator | None = None, sample: bool = True
    ) -> MetacontrollerOutput:
        """Training-time pass over right-padded residual sequences ``(B, T, W)`` with ``mask (B, T)``.

        ``sample=False`` uses the encoder means (``z̃ = μ``), for analysis. The noise is drawn
        from ``generator`` on the CPU and moved to the residual's device, so a run draws the same
        noise on every device.
        """
        batch, steps, _ = residual.shape
        lengths = mask.sum(1)
        if int(lengths.min()) < 1:
            raise ValueError("every sequence needs at least one valid step")
        embedding = self.embed_sequence(residual, lengths)  # (B, T, S)
        history_prev = self.history_states(residual)  # (B, T, H)
        mean, log_var = self.encode(residual, history_prev, embedding)  # (B, T, Z) each
        if sample:
            noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype).to(mean.device)
            z_tilde = mean + torch.exp(0.5 * log_var) * noise  # (B, T, Z)
        else:
            z_tilde = mean
        z_prev = residual.new_zeros(batch, self.config.latent_dim)
        switch_noise = None
        if sample and self.config.switch_gumbel_temperature > 0:
            uniform = torch.rand(batch, steps, generator=generator, dtype=residual.dtype).to(residual.device)
            uniform = uniform.clamp(1e-6, 1 - 1e-6)
            switch_noise = torch.log(uniform) - torch.log1p(-uniform)  # (B, T) Logistic(0, 1)
        betas, codes = [], []
        for t in range(steps):
            if t == 0:
                beta = residual.new_ones(batch)  # β_1 = 1
            else:
                noise_t = None if switch_noise is None else switch_noise[:, t]
                beta = self.switch_probability(residual[:, t], history_prev[:, t], z_prev, noise_t)
            z_prev = beta[:, None] * z_tilde[:, t] + (1.0 - beta[:, None]) * z_prev  # hold path not detached
            betas.append(beta)
            codes.append(z_prev)
        beta = torch.stack(betas, 1)  # (B, T)
        z = torch.stack(codes, 1)  # (B, T, Z)
        kl = 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var).sum(-1)  # (B, T)
        return MetacontrollerOutput(self.apply_controller(residual, z), beta, z, z_tilde, mean, log_var, kl)


def metacontroller_loss(
    action_nll_per_step: Tensor, mask: Tensor, output: MetacontrollerOutput, kl_weight: float
) -> dict[str, Tensor]:
    """Action NLL + α · KL, both averaged over valid timesteps (SPEC A§5.2, §9.2 item 5).

    ``action_nll_per_step`` ``(B, T)`` is the frozen base model's ``action_nll_per_step`` on the
    controlled residual (categorical for the grid, Gaussian for the ant).
    """
    if action_nll_per_step.shape != mask.shape:
        raise ValueError(f"action_nll_per_step must have the mask's shape {tuple(mask.shape)}, got {tuple(action_nll_per_step.shape)}")
    weights = mask.to(action_nll_per_step.dtype)  # (B, T)
    n_valid = weights.sum()
    action_nll = (action_nll_per_step * weights).sum() / n_valid
    kl = (output.kl * weights).sum() / n_valid
    switches = ((output.beta >= SWITCH_THRESHOLD).to(weights.dtype) * weights).sum() / mask.shape[0]
    return {"loss": action_nll + kl_weight * kl, "action_nll": action_nll, "kl": kl, "switches_per_episode": switches}
