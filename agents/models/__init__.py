"""Base sequence models and residual-stream control (SPEC A§3, A§5.1 items 6-7, B4).

- :mod:`agents.models.transformer`: the grid causal transformer, its KV cache and its loss.
- :mod:`agents.models.hawk`: the ant Hawk (RG-LRU) SSM, its recurrent state and its Gaussian loss.
- :mod:`agents.models.base_models`: either family from one config (build, and convert configs to and
  from checkpoint dicts); loading a trained model is :func:`agents.pretrain.load_base_model`.
- :mod:`agents.models.residual_stream`: what both families share (config dicts, checks, ``step``).
- :mod:`agents.models.controller`: linear residual-stream controllers and :func:`freeze`.
"""

from agents.models.base_models import BaseModel, BaseModelConfig, build_base_model
from agents.models.controller import freeze, full_linear_control, low_rank_control
from agents.models.hawk import HAWK_PRESETS, HawkConfig, HawkSSM, HawkState
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
    "HAWK_PRESETS",
    "BaseModel",
    "BaseModelConfig",
    "HawkConfig",
    "HawkSSM",
    "HawkState",
    "build_base_model",
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
