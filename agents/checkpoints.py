"""Atomic, versioned, verified training checkpoints (SPEC B4).

Every trainer saves one ``dict`` per checkpoint with :func:`save_checkpoint` and resumes with
:func:`load_checkpoint`. On disk a checkpoint is a plain ``torch.save`` zip archive holding::

    {
        "format_version": FORMAT_VERSION,   # added by save_checkpoint
        "kind": str,                        # what trained it, e.g. "base_model", "metacontroller"
        "model": state_dict,
        "optimizer": state_dict | None,
        "step": int,                        # optimiser steps completed
        "config": dict,                     # dataclasses.asdict of the trainer/model config
        "rng": {"torch", "numpy", "python"},  # global RNG states (added unless given)
        ...                                 # any extra keys the trainer needs (explicit
    }                                       # generator states, metrics, ...)

Writes are atomic (:func:`hier_envs.atomic_io.atomic_write`): the archive goes to a temporary
file in the same directory, is flushed and fsynced, then ``os.replace``-d over the target, so an
interrupted or failed save never leaves a partial checkpoint and the previous one stays intact.
Loads verify the zip CRCs before unpickling (a flipped byte in tensor data is otherwise silently
accepted by ``torch.load``), load with ``weights_only=True``, and check the format version, the
required keys and the kind. Every failure raises :class:`CheckpointError` naming the file.
"""

from __future__ import annotations

import os
import random
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hier_envs.atomic_io import atomic_write
from hier_envs.experts.ant_locomotion import weights_sha256

__all__ = [
    "FORMAT_VERSION",
    "REQUIRED_KEYS",
    "CheckpointError",
    "capture_rng_state",
    "generator_state",
    "load_checkpoint",
    "load_model_state",
    "module_fingerprint",
    "restore_rng_state",
    "save_checkpoint",
    "set_generator_state",
]

FORMAT_VERSION = 1
"""Bumped whenever the payload layout changes; older files are then rejected."""

REQUIRED_KEYS: tuple[str, ...] = ("kind", "model", "optimizer", "step", "config")
"""Keys every payload passed to :func:`save_checkpoint` must have."""


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, corrupt, of the wrong version or kind, or mismatched."""


# ---------------------------------------------------------------------------------------------
# Random number generator state
# ---------------------------------------------------------------------------------------------


def capture_rng_state() -> dict[str, Any]:
    """Global torch, numpy and Python RNG states, in types ``torch.load(weights_only=True)`` accepts."""
    numpy_state = np.random.get_state(legacy=False)
    return {
        "torch": torch.get_rng_state(),
        "numpy": {
            "bit_generator": numpy_state["bit_generator"],
            "key": [int(k) for k in numpy_state["state"]["key"]],
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "python": random.getstate(),
    }


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["bit_generator"],
            np.asarray(numpy_state["key"], dtype=np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["gauss"],
        )
    )
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def generator_state(generator: torch.Generator | np.random.Generator) -> Any:
    """State of an explicit generator (STYLE: randomness is passed in), checkpoint-safe."""
    if isinstance(generator, torch.Generator):
        return generator.get_state()
    if isinstance(generator, np.random.Generator):
        return generator.bit_generator.state
    raise TypeError(f"expected a torch.Generator or numpy Generator, got {type(generator).__name__}")


def set_generator_state(generator: torch.Generator | np.random.Generator, state: Any) -> None:
    """Inverse of :func:`generator_state`, in place."""
    if isinstance(generator, torch.Generator):
        generator.set_state(state)
    elif isinstance(generator, np.random.Generator):
        generator.bit_generator.state = state
    else:
        raise TypeError(f"expected a torch.Generator or numpy Generator, got {type(generator).__name__}")


# ---------------------------------------------------------------------------------------------
# Save and load
# ---------------------------------------------------------------------------------------------


def save_checkpoint(path: str | os.PathLike[str], payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` to ``path`` atomically (SPEC B4); returns the path.

    ``payload`` needs :data:`REQUIRED_KEYS`; ``format_version`` is set here and ``rng`` is
    filled with :func:`capture_rng_state` unless given. Parent directories are created.
    """
    if not isinstance(payload, Mapping):
        raise TypeError(f"payload must be a dict, got {type(payload).__name__}")
    missing = [key for key in REQUIRED_KEYS if key not in payload]
    if missing:
        raise ValueError(f"checkpoint payload is missing keys {missing}")
    if not isinstance(payload["kind"], str) or not payload["kind"]:
        raise ValueError(f"payload['kind'] must be a non-empty str, got {payload['kind']!r}")
    step = payload["step"]
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise ValueError(f"payload['step'] must be a non-negative int, got {step!r}")
    if not isinstance(payload["config"], Mapping):
        raise TypeError(
            f"payload['config'] must be a dict (use dataclasses.asdict), got {type(payload['config']).__name__}"
        )
    record = dict(payload)
    record["format_version"] = FORMAT_VERSION
    record.setdefault("rng", capture_rng_state())

    path = Path(path)
    with atomic_write(path) as handle:
        torch.save(record, handle)
    return path


def load_checkpoint(
    path: str | os.PathLike[str], expected_kind: str | None = None, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Read and verify a checkpoint written by :func:`save_checkpoint`.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: the file is truncated or corrupt (zip CRC or unpickling failure),
            is not a checkpoint dict, lacks required keys, has another format version, or its
            kind differs from ``expected_kind``. The message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            bad_member = archive.testzip()
        if bad_member is not None:
            raise CheckpointError(f"{path}: checksum mismatch in archive member {bad_member!r} (corrupt file)")
        record = torch.load(path, map_location=map_location, weights_only=True)
    except CheckpointError:
        raise
    except Exception as error:  # torch/zipfile raise many types on damaged files
        raise CheckpointError(
            f"{path}: cannot read checkpoint, truncated or corrupt ({type(error).__name__}: {error})"
        ) from error

    if not isinstance(record, dict):
        raise CheckpointError(f"{path}: expected a checkpoint dict, found {type(record).__name__}")
    if record.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {record.get('format_version')!r}, this code reads {FORMAT_VERSION}"
        )
    missing = [key for key in (*REQUIRED_KEYS, "rng") if key not in record]
    if missing:
        raise CheckpointError(f"{path}: checkpoint is missing keys {missing}")
    if expected_kind is not None and record["kind"] != expected_kind:
        raise CheckpointError(f"{path}: checkpoint kind is {record['kind']!r}, expected {expected_kind!r}")
    return record


def load_model_state(model: nn.Module, state_dict: Mapping[str, torch.Tensor], path: str | os.PathLike[str]) -> None:
    """Load ``state_dict`` into ``model`` strictly, naming ``path`` and the first mismatch.

    Parameters are compared in the model's own order: a missing key, then a shape mismatch,
    then any key the model does not have, each raise :class:`CheckpointError`.
    """
    expected = model.state_dict()
    for name, tensor in expected.items():
        if name not in state_dict:
            raise CheckpointError(f"{path}: checkpoint lacks model parameter {name!r}")
        found = state_dict[name]
        if not isinstance(found, torch.Tensor) or found.shape != tensor.shape:
            shape = tuple(found.shape) if isinstance(found, torch.Tensor) else type(found).__name__
            raise CheckpointError(
                f"{path}: parameter {name!r} has shape {shape} in the checkpoint but {tuple(tensor.shape)} in the model"
            )
    unexpected = [name for name in state_dict if name not in expected]
    if unexpected:
        raise CheckpointError(f"{path}: checkpoint has parameters the model lacks, first {unexpected[0]!r}")
    model.load_state_dict(state_dict, strict=True)


def module_fingerprint(module: nn.Module) -> str:
    """sha256 over a module's parameter and buffer names, dtypes, shapes and values
    (:func:`~hier_envs.experts.ant_locomotion.weights_sha256` of its state dict): identifies the
    exact (frozen) model that a run was trained on or steers."""
    return weights_sha256({name: tensor.detach().cpu().numpy() for name, tensor in module.state_dict().items()})

