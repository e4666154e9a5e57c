"""Base sequence models and residual-stream control (SPEC A§3, A§5.1 items 6-7, B4).

- :mod:`agents.models.transformer`: the grid causal transformer, its KV cache and its loss.
- :mod:`agents.models.controller`: linear residual-stream controllers and :func:`freeze`.
"""

from agents.models.controller import freeze, full_linear_control, low_rank_control
from agents.models.transformer import (
    TRANSFORMER_PRESETS,
    CausalTransformer,
    KVCache,
    ModelOutput,
    StepOutput,
    TransformerConfig,
    sequence_loss,
)

__all__ = [
    "TRANSFORMER_PRESETS",
    "CausalTransformer",
    "KVCache",
    "ModelOutput",
    "StepOutput",
    "TransformerConfig",
    "freeze",
    "full_linear_control",
    "low_rank_control",
    "sequence_loss",
]
