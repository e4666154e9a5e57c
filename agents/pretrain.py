"""Pretrain a base model on expert behaviour (SPEC A§3.1-3.3, B4): grid transformer or ant Hawk SSM.

The loss is next-action NLL plus λ times next-observation NLL over whole episodes of
observation tokens (no actions as inputs, SPEC §9.2 item 11). AdamW with a constant learning
rate, as Tables A4/A5. The model family follows ``PretrainConfig.model``
(:mod:`agents.models.base_models`); ``PRETRAIN_PRESETS`` are the grid's and
``ANT_PRETRAIN_PRESETS`` the ant's.

A run directory holds::

    run_dir/
    ├── latest.pt            rolling checkpoint (model, optimiser, batch-sampler RNG, step) for resume
    ├── snapshots/step_N.pt  frozen copies at ``snapshot_steps`` (probes per checkpoint, SPEC A§4.1)
    ├── model.pt             the final model (kind "base_model")
    └── metrics.csv          step, train and validation NLLs, accuracy, wall time

Interrupting and re-running the same call resumes from ``latest.pt``; the final weights equal
those of an uninterrupted run with the same seed (SPEC B4): every random draw comes from a
generator whose state is checkpointed, the batch sampler's explicitly and torch's global one
(dropout, ``TransformerConfig.dropout``) through the ``"rng"`` state that
:func:`~agents.checkpoints.save_checkpoint` records and a resume restores. On a GPU, dropout
draws from the CUDA generator, which is not restored (the guarantee is the CPU's,
:func:`~agents.training_utils.resolve_device`). A run directory made with another configuration
or from another dataset (its ``dataset_sha256``) is refused, finished or not.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.checkpoints import (
    CheckpointError,
    generator_state,
    load_checkpoint,
    load_model_state,
    restore_rng_state,
    save_checkpoint,
    set_generator_state,
)
from agents.models.base_models import (
    BaseModel,
    BaseModelConfig,
    base_model_config_from_dict,
    base_model_config_to_dict,
    build_base_model,
)
from agents.models.hawk import HAWK_PRESETS, HawkSSM
from agents.models.transformer import TRANSFORMER_PRESETS
from agents.training_utils import (
    CsvLog, apply_gradients, batch_to_device, check_non_negative_ints, check_numbers, check_positive_ints,
    check_same_config, check_same_inputs, model_device, resolve_device, run_training_loop, set_threads,
)
from hier_envs.datasets import EpisodeDataset

BASE_MODEL_KIND = "base_model"


def metric_fields(action_metric: str) -> tuple[str, ...]:
    """Columns of ``metrics.csv``; ``action_metric`` is the model's ``ACTION_METRIC``."""
    return (
        "step",
        "train_loss",
        "train_action_nll",
        "train_obs_nll",
        f"train_{action_metric}",
        "val_action_nll",
        "val_obs_nll",
        f"val_{action_metric}",
        "elapsed_s",
    )


LR_SCHEDULES = ("constant", "cosine")
"""Learning-rate schedules of :class:`PretrainConfig`."""

PRECISIONS = ("float32", "bfloat16")
"""Arithmetic of the pretraining forward pass (:attr:`PretrainConfig.precision`)."""

PRETRAIN_ADDED_FIELDS = {"lr_schedule": "constant", "lr_final_fraction": 0.1, "precision": "float32"}
""":class:`PretrainConfig` fields added after run directories were written, with the values that
reproduce those runs (``check_same_config``)."""


@dataclass(frozen=True)
class PretrainConfig:
    """Base-model pretraining hyperparameters (SPEC A§3.2 Table A4, A§3.3 Table A5; presets SPEC B5)."""

    model: BaseModelConfig = field(default_factory=lambda: TRANSFORMER_PRESETS["default"])
    """Model family and sizes (``TransformerConfig`` for the grid, ``HawkConfig`` for the ant)."""
    train_steps: int = 10_000
    """Optimiser steps (paper: 256,000)."""
    batch_size: int = 128
    """Episodes per batch (paper: 1024)."""
    learning_rate: float = 3e-4
    """AdamW learning rate (Table A4: constant)."""
    lr_schedule: str = "constant"
    """``"constant"`` (Table A4) or ``"cosine"``: a half-cosine decay from ``learning_rate`` at step
    0 to ``lr_final_fraction · learning_rate`` at ``train_steps`` (nanoGPT's decay, without warmup).
    Not the paper's; an option for short CPU runs, where a final low-lr phase usually lowers the
    loss. The rate is a function of the step alone, so a resumed run follows the same schedule."""
    lr_final_fraction: float = 0.1
    """Final learning rate as a fraction of ``learning_rate`` under the ``"cosine"`` schedule."""
    weight_decay: float = 0.03
    """AdamW weight decay (Table A4)."""
    obs_loss_weight: float = 0.01
    """λ on the next-observation NLL (paper sweep {0, 0.01}; Fig. A2 says some helps)."""
    val_fraction: float = 0.05
    """Held-out fraction of episodes for validation NLL."""
    val_max_episodes: int = 2000
    """At most this many held-out episodes are scored at each evaluation (a fixed subset), so
    evaluation stays cheap next to training on large datasets."""
    eval_every: int = 250
    """Steps between validation evaluations and metric rows."""
    checkpoint_every: int = 250
    """Steps between rolling checkpoints (latest.pt)."""
    snapshot_steps: tuple[int, ...] = ()
    """Steps at which a frozen copy is kept for probing over training (SPEC A§4.1): ints in
    ``[1, train_steps]`` (a step the run never reaches would be a snapshot that never exists).
    Stored sorted and without repeats, so configs naming the same snapshots compare equal."""
    length_buckets: int = 8
    """Batches are drawn from one of this many episode-length quantile buckets (bucket chosen
    with probability proportional to its size, so every episode stays equally likely); this
    cuts padding about in half on CPU. 1 means plain uniform batches."""
    seed: int = 0
    """Seeds the model initialisation and the batch sampler."""
    num_threads: int = 2
    """torch intra-op threads (2 for sequence models on the 2-core machine)."""
    precision: str = "float32"
    """``"float32"`` (every preset) or ``"bfloat16"``: the forward pass runs under
    ``torch.autocast`` (matrix products in bfloat16) while the weights, the optimiser state and the
    loss stay float32. Not the paper's setting; an option for hardware with fast bfloat16 (GPUs,
    CPUs with AVX512-BF16 or AMX), where it trains faster at a different rounding, so a bfloat16
    run is a different run from its float32 twin. Validation NLLs are computed in float32."""

    def __post_init__(self) -> None:
        check_positive_ints(self, ("train_steps", "batch_size", "eval_every", "checkpoint_every", "length_buckets",
                                   "val_max_episodes"))
        check_non_negative_ints(self, ("seed",))
        check_numbers(self, {"val_fraction": "(0, 1)", "lr_final_fraction": "[0, 1]", "learning_rate": "> 0",
                             "weight_decay": ">= 0", "obs_loss_weight": ">= 0"})
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"PretrainConfig.lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"PretrainConfig.precision must be one of {PRECISIONS}, got {self.precision!r}")
        self._check_snapshot_steps()

    def _check_snapshot_steps(self) -> None:
        """Refuse snapshot steps the run never writes, then store them sorted and unique.

        An unreachable step used to pass silently and fail much later, when the base-model study
        loaded the missing ``snapshots/step_N.pt``; a bare int failed after the first step.
        """
        steps = self.snapshot_steps
        where = f"PretrainConfig.snapshot_steps (ints in [1, train_steps={self.train_steps}])"
        if not isinstance(steps, (tuple, list)):
            raise TypeError(f"{where} must be a tuple or list, got {type(steps).__name__} {steps!r}")
        for step in steps:
            if isinstance(step, bool) or not isinstance(step, int):
                raise TypeError(f"{where} holds {step!r} of type {type(step).__name__}, not an int")
            if not 1 <= step <= self.train_steps:
                raise ValueError(f"{where} holds {step!r}, outside that range")
        object.__setattr__(self, "snapshot_steps", tuple(sorted(set(steps))))

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["model"] = base_model_config_to_dict(self.model)
        return values

    def learning_rate_at(self, step: int) -> float:
        """Learning rate of the optimiser step from the 0-based ``step`` (see ``lr_schedule``)."""
        if self.lr_schedule == "constant":
            return self.learning_rate
        progress = min(step / self.train_steps, 1.0)
        final = self.lr_final_fraction * self.learning_rate
        return final + 0.5 * (self.learning_rate - final) * (1.0 + math.cos(math.pi * progress))


PRETRAIN_PRESETS: dict[str, PretrainConfig] = {
    "smoke": PretrainConfig(
        model=TRANSFORMER_PRESETS["smoke"], train_steps=60, batch_size=16, eval_every=20, checkpoint_every=20,
        snapshot_steps=(20, 60), num_threads=1,
    ),
    "default": PretrainConfig(
        model=TRANSFORMER_PRESETS["default"], train_steps=12_000, batch_size=128, learning_rate=1e-3,
        eval_every=250, checkpoint_every=250, snapshot_steps=(1000, 2000, 4000, 6000, 12_000),
    ),
    "paper": PretrainConfig(
        model=TRANSFORMER_PRESETS["paper"], train_steps=256_000, batch_size=1024, eval_every=2000,
        checkpoint_every=2000, snapshot_steps=(16_000, 32_000, 64_000, 128_000, 256_000),
    ),
}
"""Named pretraining configurations (SPEC B5): ``paper`` is Table A4. ``default`` uses lr 1e-3
rather than the paper's 3e-4 (with 1/300 of the paper's samples, 3e-4 was still far from
converged: with the flat embedding, validation NLL 1.057 at 2,000 steps on 50k episodes, against
1.002 at lr 1e-3 on 300k episodes, where no train/validation gap appeared). Its 12,000 steps
(6,000 until session 33) fill the 45-minute CPU budget: on D with ε = 0 the ground-truth
controllers kept gaining from 6,000 to 24,000 steps (results/base_model_default_eps0/longer/)."""

ANT_PRETRAIN_PRESETS: dict[str, PretrainConfig] = {
    "smoke": PretrainConfig(
        model=HAWK_PRESETS["smoke"], train_steps=30, batch_size=8, obs_loss_weight=10.0, eval_every=10,
        checkpoint_every=10, snapshot_steps=(10, 30), num_threads=1, val_fraction=0.25,
    ),
    "default": PretrainConfig(
        model=HAWK_PRESETS["default"], train_steps=5000, batch_size=16, learning_rate=5e-4,
        obs_loss_weight=10.0 / HAWK_PRESETS["default"].obs_dim,
        eval_every=250, checkpoint_every=250, snapshot_steps=(1000, 2500, 5000),
    ),
    "paper": PretrainConfig(
        model=HAWK_PRESETS["paper"], train_steps=204_800, batch_size=512, obs_loss_weight=10.0, eval_every=2000,
        checkpoint_every=2000, snapshot_steps=(25_600, 51_200, 102_400, 204_800),
    ),
}
"""Named ant pretraining configurations (SPEC A§3.3, B5): ``paper`` is Table A5 (λ = 10, 204,800
steps at batch 512, lr 3e-4); ``default`` is sized for ≤ 90 minutes on 2 CPU cores (measured
about 5,000 tokens/s, 0.8 s per step of 16 whole episodes of ~290 steps) with a higher constant
learning rate for its far smaller budget.

λ in ``default`` is the paper's 10 divided by the 41 observation dimensions (NOT the paper's
literal value): the next-observation NLL here is summed over dimensions, and the paper does not
say whether its λ weighs the sum or the per-dimension mean (SPEC A§9.1 item 7). On the sum,
λ = 10 leaves the action term under 1% of the loss. Measured on the same data and seed, 5,000
steps (``results/ant_obs_loss_scale/``): held-out action MSE 0.0085 against 0.0182, action NLL
−8.28 against −5.24 and next-observation NLL −64.9 against −55.0, so both heads fit better.
``paper`` keeps the literal formula, λ = 10 on the sum."""


class LengthBucketSampler:
    """Uniform episode sampling, grouped so that one batch holds episodes of similar length.

    Episodes are split into ``n_buckets`` length quantiles; a batch first picks a bucket with
    probability proportional to its size, then episodes uniformly inside it. Each episode's
    marginal probability is unchanged, while padding to the longest episode of the batch
    shrinks (SPEC B5: performance on CPU).
    """

    def __init__(self, indices: np.ndarray, lengths: np.ndarray, n_buckets: int) -> None:
        order = indices[np.argsort(lengths[indices], kind="stable")]
        self.buckets = [bucket for bucket in np.array_split(order, min(n_buckets, len(order))) if len(bucket)]
        sizes = np.array([len(bucket) for bucket in self.buckets], dtype=np.float64)
        self.bucket_probabilities = sizes / sizes.sum()

    def sample(self, rng: np.random.Generator, batch_size: int) -> np.ndarray:
        bucket = self.buckets[rng.choice(len(self.buckets), p=self.bucket_probabilities)]
        return bucket[rng.integers(len(bucket), size=batch_size)]


def batch_tensors(dataset: EpisodeDataset, indices: np.ndarray) -> dict[str, torch.Tensor]:
    """Padded episode batch as tensors; padded actions are set to 0 and masked out.

    Discrete actions (padding -1) become 0 where padded; continuous actions are already zero
    there and are passed through untouched (never clipped).
    """
    batch = dataset.padded_batch(indices)
    mask = torch.from_numpy(batch["mask"])
    actions = batch["actions"]
    return {
        "observations": torch.from_numpy(batch["observations"]),
        "next_observations": torch.from_numpy(batch["next_observations"]),
        "actions": torch.from_numpy(actions if actions.dtype.kind == "f" else np.maximum(actions, 0)),
        "subgoals": torch.from_numpy(batch["subgoals"]),
        "mask": mask,
    }


class BatchPrefetcher:
    """The training batches of :func:`pretrain`, assembled ``depth`` batches ahead in worker threads.

    On a GPU at the paper's batch of 1,024 episodes, assembling a padded batch on the CPU (about
    0.06 s for the grid, ``results/batch_assembly_speed.json``) would otherwise leave the device idle between steps. Episode indices are
    still drawn one batch at a time, in order, in the calling thread, so the batches are exactly
    those of ``depth = 0`` (no threads, the CPU default); :meth:`rng_state` is the sampler RNG's
    state before the oldest batch not yet taken, which is what a checkpoint stores, so a resumed
    run draws the same batches as an uninterrupted one whatever the depth.
    """

    def __init__(self, dataset: EpisodeDataset, sampler: LengthBucketSampler, rng: np.random.Generator,
                 batch_size: int, depth: int = 0, pin_memory: bool = False) -> None:
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
            raise ValueError(f"prefetch depth must be an int >= 0, got {depth!r}")
        self.dataset, self.sampler, self.rng, self.batch_size = dataset, sampler, rng, batch_size
        self.depth, self.pin_memory = depth, pin_memory
        self._pool = ThreadPoolExecutor(max_workers=depth, thread_name_prefix="batches") if depth else None
        self._queue: deque[tuple[Any, Future[dict[str, torch.Tensor]]]] = deque()

    def _assemble(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        batch = batch_tensors(self.dataset, indices)
        return {key: value.pin_memory() for key, value in batch.items()} if self.pin_memory else batch

    def _fill(self) -> None:
        while self._pool is not None and len(self._queue) < self.depth:
            state = generator_state(self.rng)  # a snapshot, taken before this batch's draw
            indices = self.sampler.sample(self.rng, self.batch_size)
            self._queue.append((state, self._pool.submit(self._assemble, indices)))

    def next(self) -> dict[str, torch.Tensor]:
        """The next training batch (CPU tensors, pinned if asked)."""
        if self._pool is None:
            return self._assemble(self.sampler.sample(self.rng, self.batch_size))
        self._fill()
        _, future = self._queue.popleft()
        self._fill()  # keep the workers busy while the caller trains on this one
        return future.result()

    def rng_state(self) -> Any:
        """Sampler RNG state for a checkpoint: as if no batch had been drawn ahead."""
        return self._queue[0][0] if self._queue else generator_state(self.rng)

    def close(self) -> None:
        """Drop the batches drawn ahead, rewinding the RNG to before them, and stop the workers."""
        if self._pool is not None:
            if self._queue:
                set_generator_state(self.rng, self._queue[0][0])
            for _, future in self._queue:
                future.cancel()
            self._queue.clear()
            self._pool.shutdown(wait=True)


def outputs_in_float32(outputs: Any) -> Any:
    """``outputs`` (a model's output dataclass) with every floating tensor field cast to float32,
    so the loss of an autocast forward pass is computed at full precision."""
    values = {item.name: getattr(outputs, item.name) for item in dataclasses.fields(outputs)}
    cast = {name: value.float() for name, value in values.items()
            if isinstance(value, torch.Tensor) and value.is_floating_point()}
    return dataclasses.replace(outputs, **cast)


@torch.no_grad()
def evaluate_nll(
    model: BaseModel, dataset: EpisodeDataset, indices: np.ndarray, obs_loss_weight: float, chunk: int = 256
) -> dict[str, float]:
    """Validation NLLs and the model's action metric averaged over all valid timesteps of ``indices``
    (computed on the model's device)."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    totals = {"action_nll": 0.0, "obs_nll": 0.0, model.ACTION_METRIC: 0.0}
    n_total = 0
    for start in range(0, len(indices), chunk):
        batch = batch_to_device(batch_tensors(dataset, indices[start : start + chunk]), device)
        losses = model.loss(model(batch["observations"]), batch, obs_loss_weight)
        n_valid = int(batch["mask"].sum())
        for key in totals:
            totals[key] += float(losses[key]) * n_valid
        n_total += n_valid
    model.train(was_training)
    return {key: value / n_total for key, value in totals.items()}


def observation_statistics(dataset: EpisodeDataset, indices: np.ndarray, min_scale: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension mean and standard deviation (floored at ``min_scale``) of the observations of
    episodes ``indices`` (the training split, so validation data never leak into the model)."""
    subset = dataset.subset(indices)
    observations = subset.decode_observations(np.arange(subset.observations.shape[0])).astype(np.float64)
    return (torch.from_numpy(observations.mean(0)).float(),
            torch.from_numpy(np.maximum(observations.std(0), min_scale)).float())


def check_dataset_fits(model_config: BaseModelConfig, dataset: EpisodeDataset) -> None:
    """``ValueError`` unless ``dataset``'s observations and actions are what ``model_config`` models."""
    continuous = dataset.actions.ndim == 2
    wants_continuous = hasattr(model_config, "action_dim")
    action_size = dataset.actions.shape[1] if continuous else None
    if dataset.obs_dim != model_config.obs_dim or continuous != wants_continuous or (
        continuous and action_size != model_config.action_dim
    ):
        raise ValueError(
            f"dataset {dataset!r} (obs_dim={dataset.obs_dim}, "
            f"{'continuous actions of size ' + str(action_size) if continuous else 'discrete actions'}) does not fit "
            f"{type(model_config).__name__}(obs_dim={model_config.obs_dim}); grid data trains the transformer, "
            "ant data the Hawk SSM"
        )


def load_base_model(path: str | Path) -> BaseModel:
    """Load a pretrained base model written by :func:`pretrain` (``model.pt`` or a snapshot)."""
    record = load_checkpoint(path, expected_kind=BASE_MODEL_KIND)
    try:
        model_config = base_model_config_from_dict(record["config"]["model"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: base-model checkpoint has no valid model config ({error})") from error
    model = build_base_model(model_config)
    load_model_state(model, record["model"], path)
    return model


def pretrain(
    config: PretrainConfig,
    dataset: EpisodeDataset,
    run_dir: str | Path,
    *,
    stop_after: int | None = None,
    progress: bool = True,
    device: str | torch.device = "cpu",
    prefetch_batches: int | None = None,
) -> Path:
    """Train (or resume training) a base model; returns the path of ``model.pt``.

    ``stop_after`` (``None`` or an int >= 1) ends the call after that many total steps without
    writing ``model.pt`` (used to test resumption); calling again continues from ``latest.pt``.
    ``device`` is where the model trains (``"cuda"`` for the ``paper`` preset's 256,000 steps at
    batch 1,024); it is not part of the configuration, so a run may resume on another device.
    Batches are drawn on the CPU from the same generators whatever the device;
    ``prefetch_batches`` of them are assembled ahead in worker threads (default: none on the CPU,
    whose cores the model needs, 4 elsewhere; :class:`BatchPrefetcher`), with the same batches.
    """
    if stop_after is not None and (isinstance(stop_after, bool) or not isinstance(stop_after, int) or stop_after < 1):
        # 0 would return a latest.pt that a fresh run never wrote
        raise ValueError(f"stop_after must be None or an int >= 1, got {stop_after!r}")
    check_dataset_fits(config.model, dataset)
    device = resolve_device(device)
    set_threads(config.num_threads)
    run_dir = Path(run_dir)
    latest_path = run_dir / "latest.pt"
    final_path = run_dir / "model.pt"
    config_dict = config.to_dict()
    dataset_sha256 = dataset.sha256  # hashes every array: computed once, checked and recorded below
    inputs = {"dataset_sha256": dataset_sha256}  # the config does not say which data a run used
    if final_path.exists():
        record = load_checkpoint(final_path, expected_kind=BASE_MODEL_KIND)
        check_same_config(final_path, record, config_dict, "PretrainConfig", PRETRAIN_ADDED_FIELDS)
        check_same_inputs(final_path, record, inputs)
        return final_path

    torch.manual_seed(config.seed)  # model initialisation
    model = build_base_model(config.model)
    train_indices, val_indices = dataset.split(config.val_fraction, seed=config.seed)
    if len(val_indices) == 0 or len(train_indices) == 0:
        raise ValueError(
            f"val_fraction={config.val_fraction} splits the {dataset.n_episodes} episodes of {dataset!r} into "
            f"{len(train_indices)} training and {len(val_indices)} validation episodes; both must be non-empty"
        )
    if isinstance(model, HawkSSM):
        model.set_observation_statistics(*observation_statistics(dataset, train_indices))
    model.to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, betas=(0.9, 0.999), weight_decay=config.weight_decay
    )
    batch_rng = np.random.default_rng([config.seed, 17])
    val_indices = val_indices[: config.val_max_episodes]
    sampler = LengthBucketSampler(train_indices, dataset.episode_lengths, config.length_buckets)
    log = CsvLog(run_dir / "metrics.csv", metric_fields(model.ACTION_METRIC))
    step, elapsed = 0, 0.0
    devices = [device.type]  # provenance: every device type this run trained on
    global_rng = None  # torch/numpy/python global RNG states to resume from (dropout draws from torch's)
    if latest_path.exists():
        record = load_checkpoint(latest_path, expected_kind=BASE_MODEL_KIND)
        check_same_config(latest_path, record, config_dict, "PretrainConfig", PRETRAIN_ADDED_FIELDS)
        check_same_inputs(latest_path, record, inputs)
        devices = sorted(set(record.get("devices", ["cpu"])) | {device.type})
        load_model_state(model, record["model"], latest_path)
        optimizer.load_state_dict(record["optimizer"])
        set_generator_state(batch_rng, record["batch_rng"])
        step, elapsed = record["step"], record["elapsed_s"]
        global_rng = record["rng"]  # captured by save_checkpoint after step ``step`` and its evaluation
    log.truncate_after(step)

    def checkpoint(path: Path, step: int, elapsed: float) -> None:
        save_checkpoint(
            path,
            {
                "kind": BASE_MODEL_KIND,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "step": step,
                "config": config_dict,
                "batch_rng": batches.rng_state(),
                "elapsed_s": elapsed,
                "devices": devices,
                "dataset_sha256": dataset_sha256,
            },
        )

    def train_step(step: int) -> dict[str, torch.Tensor]:
        for group in optimizer.param_groups:
            group["lr"] = config.learning_rate_at(step)
        batch = batch_to_device(batches.next(), device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bfloat16"):
            outputs = model(batch["observations"])
        return apply_gradients(optimizer, model.loss(outputs_in_float32(outputs), batch, config.obs_loss_weight))

    def make_row(step: int, elapsed: float, means: dict[str, float]) -> tuple[dict[str, Any], dict[str, str]]:
        val = evaluate_nll(model, dataset, val_indices, config.obs_loss_weight)
        row = {f"train_{key}": value for key, value in means.items()}
        row.update({f"val_{key}": value for key, value in val.items()}, step=step, elapsed_s=elapsed)
        return row, {"val_nll": f"{val['action_nll']:.3f}"}

    model.train()
    if prefetch_batches is None:
        prefetch_batches = 0 if device.type == "cpu" else 4
    batches = BatchPrefetcher(dataset, sampler, batch_rng, config.batch_size, prefetch_batches,
                              pin_memory=device.type == "cuda")
    if global_rng is not None:
        # last, so nothing between here and the next step draws from it: the initialisation above
        # reseeded torch, and the uninterrupted run's dropout masks continue from the saved state
        restore_rng_state(global_rng)
    try:
        step, elapsed = run_training_loop(
            train_step, step=step, total_steps=config.train_steps, stop_after=stop_after, elapsed=elapsed,
            window_keys=("loss", "action_nll", "obs_nll", model.ACTION_METRIC),
            log_every=config.eval_every, log=log, make_row=make_row, checkpoint=checkpoint, latest_path=latest_path,
            checkpoint_every=config.checkpoint_every,
            snapshot_path=lambda step: run_dir / "snapshots" / f"step_{step}.pt" if step in config.snapshot_steps else None,
            desc="pretrain", progress=progress,
        )
    finally:
        batches.close()
    if step < config.train_steps:
        return latest_path
    checkpoint(final_path, step, elapsed)
    return final_path


def main(argv: list[str] | None = None) -> None:
    """``python -m agents.pretrain [--env ant] --preset default --dataset D.npz --run-dir DIR``."""
    import argparse

    from hier_envs.datasets import load_dataset

    parser = argparse.ArgumentParser(description="Pretrain a base model: grid transformer or ant Hawk SSM (SPEC A§3).")
    parser.add_argument("--env", choices=("grid", "ant"), default="grid", help="model family and preset table")
    parser.add_argument("--preset", choices=sorted(PRETRAIN_PRESETS), default="default")
    parser.add_argument("--dataset", required=True, help="dataset D written by python -m hier_envs.datasets")
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--seed", type=int, default=None, help="override the preset's seed")
    parser.add_argument("--train-steps", type=int, default=None,
                        help="override the preset's step count (its snapshot steps beyond it are dropped)")
    parser.add_argument("--batch-size", type=int, default=None, help="override the preset's batch (episodes; paper 1,024)")
    parser.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=None,
                        help="override the preset's learning-rate schedule (constant: the paper's)")
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help="override the preset's forward-pass arithmetic (bfloat16: autocast, faster where the "
                             "hardware has it; float32: the presets')")
    parser.add_argument("--device", default="cpu",
                        help="torch device to train on: cpu (default), cuda, cuda:N or mps; a run may resume on another")
    args = parser.parse_args(argv)
    config = (PRETRAIN_PRESETS if args.env == "grid" else ANT_PRETRAIN_PRESETS)[args.preset]
    overrides = {key: value for key, value in (("seed", args.seed), ("train_steps", args.train_steps),
                                               ("batch_size", args.batch_size), ("lr_schedule", args.lr_schedule),
                                               ("precision", args.precision))
                 if value is not None}
    if args.train_steps is not None:  # a shorter run keeps only the snapshots it reaches
        overrides["snapshot_steps"] = tuple(step for step in config.snapshot_steps if step <= args.train_steps)
    try:
        config = dataclasses.replace(config, **overrides)
    except (TypeError, ValueError) as error:
        parser.error(str(error))
    try:
        device = resolve_device(args.device)
    except ValueError as error:
        parser.error(str(error))
    path = pretrain(config, load_dataset(args.dataset), args.run_dir, device=device)
    print(f"base model: {path}")


if __name__ == "__main__":
    main()
