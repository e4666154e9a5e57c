"""The two base-model families behind one name (SPEC B4): grid transformer and ant Hawk SSM.

Trainers and loaders take a :data:`BaseModelConfig` and call :func:`build_base_model`; configs
are stored in checkpoints as :func:`base_model_config_to_dict` (the fields plus a
``"model_type"`` tag) and read back with :func:`base_model_config_from_dict`. A stored config
without the tag is a grid transformer (checkpoints written before the ant model existed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agents.models.hawk import HawkConfig, HawkSSM
from agents.models.transformer import CausalTransformer, TransformerConfig

__all__ = [
    "BaseModel",
    "BaseModelConfig",
    "MODEL_TYPES",
    "base_model_config_from_dict",
    "base_model_config_to_dict",
    "build_base_model",
]

BaseModel = CausalTransformer | HawkSSM
BaseModelConfig = TransformerConfig | HawkConfig

MODEL_TYPES: dict[str, tuple[type, type]] = {
    "causal_transformer": (TransformerConfig, CausalTransformer),
    "hawk": (HawkConfig, HawkSSM),
}
"""``model_type`` tag -> (config class, model class)."""
_DEFAULT_TYPE = "causal_transformer"


def _type_of(config: object) -> str:
    for name, (config_class, _) in MODEL_TYPES.items():
        if type(config) is config_class:
            return name
    raise TypeError(f"base model config must be one of {[c.__name__ for c, _ in MODEL_TYPES.values()]}, got {type(config).__name__}")


def build_base_model(config: BaseModelConfig) -> BaseModel:
    """A freshly initialised model of ``config``'s family (uses torch's global RNG)."""
    return MODEL_TYPES[_type_of(config)][1](config)


def base_model_config_to_dict(config: BaseModelConfig) -> dict[str, Any]:
    """Fields of ``config`` plus its ``model_type`` tag."""
    return {"model_type": _type_of(config), **config.to_dict()}


def base_model_config_from_dict(values: Mapping[str, Any]) -> BaseModelConfig:
    """Inverse of :func:`base_model_config_to_dict`; ``ValueError`` on an unknown type or key."""
    values = dict(values)
    model_type = values.pop("model_type", _DEFAULT_TYPE)
    if model_type not in MODEL_TYPES:
        raise ValueError(f"unknown model_type {model_type!r}; expected one of {sorted(MODEL_TYPES)}")
    return MODEL_TYPES[model_type][0].from_dict(values)
