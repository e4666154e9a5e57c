"""Small pieces every trainer shares: CSV metric logs that survive resumes, threads, devices, seeding.

``write_text_atomic`` is re-exported from :mod:`hier_envs.atomic_io` for existing importers.
"""

from __future__ import annotations

import copy
import csv
import math
import os
import platform
import random
import time
from collections.abc import Callable, Mapping, Sequence
from numbers import Real
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from tqdm.auto import tqdm

from agents.checkpoints import CheckpointError
from hier_envs.atomic_io import write_text_atomic

__all__ = [
    "CsvLog", "batch_to_device", "check_episode_batches", "check_non_negative_ints", "check_numbers",
    "check_positive_ints", "check_same_inputs", "machine_description", "model_device",
    "model_on_device", "resolve_device", "seed_everything", "set_threads", "write_text_atomic",
]


def check_positive_ints(config: object, names: Sequence[str], *, allow_none: bool = False) -> None:
    """Raise ``ValueError`` naming the first field of ``config`` in ``names`` that is not an int >= 1.

    The message reads ``"<ConfigClass>.<field> must be a positive int, got <value>"``; with
    ``allow_none`` a field may also be ``None`` (meaning "derive it").
    """
    for name in names:
        value = getattr(config, name)
        if allow_none and value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{type(config).__name__}.{name} must be a positive int, got {value!r}")


def check_non_negative_ints(config: object, names: Sequence[str]) -> None:
    """Raise ``ValueError`` naming the first field of ``config`` in ``names`` that is not an int >= 0
    (seeds, layer indices): ``"<ConfigClass>.<field> must be a non-negative int, got <value>"``."""
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{type(config).__name__}.{name} must be a non-negative int, got {value!r}")


def check_episode_batches(config: object) -> None:
    """The batch geometry of the critic-free RL trainers (internal RL, raw-action RL; SPEC A§6):
    ``batch_episodes`` splits into whole ``rollout_envs`` chunks and into ``minibatches`` equal
    minibatches (a fixed count per epoch, SPEC §9.2 item 8), and ``total_episodes`` holds at
    least one batch (else the run would end "finished" after no update). ``ValueError`` naming
    the fields otherwise; run after :func:`check_positive_ints` on them."""
    where = type(config).__name__
    batch = config.batch_episodes
    for divisor in ("rollout_envs", "minibatches"):
        if batch % getattr(config, divisor) != 0:
            raise ValueError(f"{where}.batch_episodes ({batch}) must be a multiple of {divisor} "
                             f"({getattr(config, divisor)})")
    if config.total_episodes < batch:
        raise ValueError(f"{where}.total_episodes ({config.total_episodes}) is below one batch ({batch})")


def check_numbers(config: object, bounds: Mapping[str, str]) -> None:
    """Check real-valued fields of ``config``: each name in ``bounds`` maps to its allowed range,
    one of ``"> 0"``, ``">= 0"``, ``"(0, 1)"``, ``"[0, 1]"``, ``"(0, 1]"`` or ``"finite"`` (any
    real number but NaN and ±inf).

    A value that is not a real number (a ``str``, a ``bool``, ``None``) raises ``TypeError``; one
    outside its range, NaN or infinite raises ``ValueError``; both messages read
    ``"<ConfigClass>.<field> must be …, got <value>"``.
    """
    for name, allowed in bounds.items():
        value = getattr(config, name)
        where = f"{type(config).__name__}.{name}"
        if isinstance(value, bool) or not isinstance(value, Real):
            raise TypeError(f"{where} must be a real number {allowed}, got {value!r}")
        value = float(value)
        inside = {
            "> 0": 0.0 < value < float("inf"),
            ">= 0": 0.0 <= value < float("inf"),
            "(0, 1)": 0.0 < value < 1.0,
            "[0, 1]": 0.0 <= value <= 1.0,
            "(0, 1]": 0.0 < value <= 1.0,
            "finite": math.isfinite(value),
        }[allowed]  # NaN compares False everywhere, so it is refused
        if not inside:
            requirement = {"> 0": "finite and > 0", ">= 0": "finite and >= 0", "finite": "finite"}.get(
                allowed, f"in {allowed}")
            raise ValueError(f"{where} must be {requirement}, got {value!r}")


def machine_description() -> dict[str, Any]:
    """The platform, CPU model and vector-unit flags a result was computed on (SPEC B5).

    Why: the same seed gives the same numbers only on the same kind of CPU; another CPU's kernels
    round differently and the difference compounds over training (``results/fresh_machine_check``,
    ``results/ant_locomotion_rerun``). Recording the CPU tells a reader which comparisons can be
    bit for bit. Linux reads ``/proc/cpuinfo``; elsewhere the CPU fields are empty.
    """
    model, flags = "", []
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = ""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and not model:
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = sorted(flag for flag in value.split() if flag.startswith(("avx", "amx", "fma", "f16c")))
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"platform": platform.platform(), "cpu_model": model, "cpu_vector_flags": flags,
            "cpu_count": os.cpu_count(), "usable_cpus": usable,  # fewer under taskset / a container's limit
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability()}


def seed_everything(seed: int) -> None:
    """Seed the global RNGs that library code may touch; our own code passes generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_threads(num_threads: int) -> None:
    """Cap torch's intra-op threads (2 for sequence models on this machine, 1 for small MLPs)."""
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    torch.set_num_threads(num_threads)


def resolve_device(device: str | torch.device) -> torch.device:
    """The torch device a trainer runs on: ``"cpu"`` (the default everywhere), ``"cuda"``,
    ``"cuda:N"`` or ``"mps"``.

    Refuses a device this machine lacks with a ``ValueError`` naming it, up front, instead of a
    failure deep inside the first optimiser step. The device is where the arithmetic runs, not
    part of a run's configuration: checkpoints hold CPU-loadable tensors, so a run started on a
    GPU resumes on the CPU and back (the same-seed-same-curve guarantee holds on the CPU only).
    """
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a str or torch.device, got {type(device).__name__} {device!r}")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"device {device!r} is not a torch device ({error})") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r}: CUDA is not available here (torch {torch.__version__}, "
                f"{'CUDA ' + torch.version.cuda if torch.version.cuda else 'a CPU-only build'}); use device 'cpu'"
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif resolved.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"device {device!r}: MPS is not available here; use device 'cpu'")
    elif resolved.type != "cpu":
        raise ValueError(f"device {device!r}: only cpu, cuda and mps are supported")
    return resolved


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of ``model``'s parameters (the CPU for a model without any)."""
    parameter = next(model.parameters(), None)
    return torch.device("cpu") if parameter is None else parameter.device


def model_on_device(model: ModuleT, device: torch.device) -> ModuleT:
    """``model`` itself if it is on ``device``, else a copy moved there: the caller's model stays
    where it is (trainers that read a frozen model on another device)."""
    return model if model_device(model) == device else copy.deepcopy(model).to(device)


def batch_to_device(batch: Mapping[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """``batch`` with every tensor on ``device`` (no copy where it already is)."""
    return {key: value.to(device, non_blocking=True) for key, value in batch.items()}


class CsvLog:
    """Append-only metrics CSV that is cut back to a checkpoint's step on resume.

    Rows are appended and flushed one by one, so an interrupted run loses nothing it logged;
    :meth:`truncate_after` drops rows newer than the checkpoint a run resumes from, so the
    resumed log has no duplicate steps.
    """

    def __init__(self, path: str | os.PathLike[str], fields: Sequence[str], step_field: str = "step") -> None:
        self.path = Path(path)
        self.fields = list(fields)
        self.step_field = step_field
        if step_field not in self.fields:
            raise ValueError(f"step_field {step_field!r} is not among the fields {self.fields}")

    def truncate_after(self, step: int) -> None:
        """Keep only rows whose step is at most ``step`` (all rows are dropped for ``step < 0``)."""
        rows = self.read() if self.path.exists() else []
        kept = [row for row in rows if int(float(row[self.step_field])) <= step]
        lines = [",".join(self.fields)] + [",".join(str(row.get(f, "")) for f in self.fields) for row in kept]
        write_text_atomic(self.path, "\n".join(lines) + "\n")

    def append(self, row: Mapping[str, Any]) -> None:
        unknown = set(row) - set(self.fields)
        if unknown:
            raise ValueError(f"unknown CSV fields {sorted(unknown)}")
        new_file = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.fields)
            if new_file:
                writer.writeheader()
            writer.writerow({key: _format(value) for key, value in row.items()})
            handle.flush()

    def read(self) -> list[dict[str, str]]:
        with open(self.path, newline="") as handle:
            return list(csv.DictReader(handle))


def _format(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, torch.Tensor):
        return f"{value.item():.6g}"
    return value


def tuples_to_lists(value: Any) -> Any:
    """The JSON form of nested config values (tuples become lists), for comparing stored configs."""
    if isinstance(value, dict):
        return {key: tuples_to_lists(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [tuples_to_lists(item) for item in value]
    return value


def check_same_config(path: str | os.PathLike[str], record: Mapping[str, Any], config_dict: Mapping[str, Any],
                      config_name: str, added_fields: Mapping[str, Any] | None = None) -> None:
    """Refuse to resume from a checkpoint written with another configuration (SPEC B4).

    ``added_fields`` names top-level fields added to the config after checkpoints were written,
    each with the value that reproduces the old behaviour: a stored config without such a field
    is read as having that value, so old run directories still resume (and still refuse a
    request for any other value).
    """
    stored = record.get("config")
    if isinstance(stored, Mapping) and added_fields:
        stored = {**{key: value for key, value in added_fields.items() if key not in stored}, **stored}
    if tuples_to_lists(stored) != tuples_to_lists(config_dict):
        raise CheckpointError(
            f"{path}: this run directory was made with a different {config_name}; use a new directory "
            f"(stored {stored}, requested {config_dict})"
        )



def check_same_inputs(path: str | os.PathLike[str], record: Mapping[str, Any], inputs: Mapping[str, Any]) -> None:
    """Refuse to resume or reuse a run whose checkpoint was made from other inputs (SPEC B4).

    ``inputs`` maps payload keys (e.g. ``"base_model_fingerprint"``, ``"dataset_sha256"``) to the
    values this call would train with; the trainer writes the same keys into every checkpoint.
    The config does not say which frozen model or dataset a run used, so without this a rerun in
    the same directory would silently return the results of another model. A checkpoint lacking
    a key was written before the key was recorded and cannot be checked: it is refused too.
    Raises :class:`CheckpointError` naming the file and the first differing input.
    """
    for key, expected in inputs.items():
        if key not in record:
            raise CheckpointError(f"{path}: checkpoint does not record its {key}, so it cannot be checked against "
                                  f"this run's inputs; use a new directory")
        if tuples_to_lists(record[key]) != tuples_to_lists(expected):
            raise CheckpointError(f"{path}: this run directory was made from another {key} (stored {record[key]!r}, "
                                  f"requested {expected!r}); use a new directory")

def run_training_loop(
    train_step: Callable[[int], Mapping[str, torch.Tensor]],
    *,
    step: int,
    total_steps: int,
    stop_after: int | None,
    elapsed: float,
    window_keys: Sequence[str],
    log_every: int,
    log: CsvLog,
    checkpoint: Callable[[Path, int, float], None],
    latest_path: Path,
    checkpoint_every: int,
    make_row: Callable[[int, float, dict[str, float]], tuple[dict[str, Any], dict[str, str]]] | None = None,
    postfix: Mapping[str, str] | None = None,
    snapshot_path: Callable[[int], Path | None] | None = None,
    desc: str = "train",
    progress: bool = True,
) -> tuple[int, float]:
    """Optimiser steps ``step+1 … end`` of a resumable trainer (base model, metacontroller, CompILE),
    where ``end`` is ``total_steps``, or ``stop_after`` if that comes first (a run cut short to be
    resumed later).

    ``train_step(step)`` runs one optimiser step from the 0-based ``step`` and returns its losses.
    Every ``log_every`` steps (and at ``total_steps``) the window means of ``window_keys`` go to
    ``make_row(step, elapsed, means)``, which returns the CSV row and the progress-bar postfix;
    without it the row is ``step``, ``elapsed_s`` and the means, and the postfix shows the means
    named in ``postfix`` (label → key).
    ``checkpoint(path, step, elapsed)`` writes ``latest_path`` every ``checkpoint_every`` steps and
    at ``end``, and ``snapshot_path(step)`` (when given and not ``None``) at kept steps.
    ``elapsed`` accumulates the loop's wall time over resumes. Returns the final step and elapsed.

    The averaging window is not checkpointed: a run resumed between two log rows logs, at the next
    row, the mean over the steps since the resume only (its weights are those of an uninterrupted
    run all the same). Trainers whose ``checkpoint_every`` is a multiple of ``log_every`` resume on
    a row boundary, so only a ``stop_after`` between rows shows it.
    """
    end = total_steps if stop_after is None else min(stop_after, total_steps)
    window: dict[str, list[float]] = {key: [] for key in window_keys}
    bar = tqdm(total=total_steps, initial=step, desc=desc, disable=not progress, dynamic_ncols=True)
    tic = time.perf_counter()

    def lap() -> None:
        nonlocal elapsed, tic
        now = time.perf_counter()
        elapsed, tic = elapsed + now - tic, now

    while step < end:
        losses = train_step(step)
        step += 1
        bar.update(1)
        for key in window:
            window[key].append(float(losses[key].detach()))
        if step % log_every == 0 or step == total_steps:
            lap()
            means = {key: float(np.mean(values)) for key, values in window.items()}
            if make_row is not None:
                row, shown = make_row(step, elapsed, means)
            else:
                row = {"step": step, "elapsed_s": elapsed, **means}
                shown = {label: f"{means[key]:.3f}" for label, key in (postfix or {}).items()}
            log.append(row)
            bar.set_postfix(**shown)
            window = {key: [] for key in window}
        snapshot = snapshot_path(step) if snapshot_path is not None else None
        if snapshot is not None:
            lap()
            checkpoint(snapshot, step, elapsed)
        if step % checkpoint_every == 0 or step == end:
            lap()
            checkpoint(latest_path, step, elapsed)
    bar.close()
    return step, elapsed


Losses = TypeVar("Losses", bound=Mapping[str, torch.Tensor])
ModuleT = TypeVar("ModuleT", bound=torch.nn.Module)


def apply_gradients(optimizer: torch.optim.Optimizer, losses: Losses) -> Losses:
    """One optimiser step on ``losses["loss"]``; returns ``losses`` (the trainers' step bodies)."""
    optimizer.zero_grad(set_to_none=True)
    losses["loss"].backward()
    optimizer.step()
    return losses
