"""The on-disk dataset format: episodes back to back, checksummed, loaded and verified (SPEC B3).

An episode with ``T`` actions stores ``T + 1`` observations (the final one included), so
``o_t --a_t--> o_{t+1}`` for ``t < T``. Ground-truth subgoal labels are stored for analysis,
probes and ground-truth controllers only; they are never an input to the learning agents
(SPEC B2, B3). :mod:`hier_envs.datasets` generates datasets in this format and re-exports
everything public here.

On-disk layout (schema version 1): one ``.npz`` zip, written to a hidden temporary file
``.NAME.<random>.tmp`` beside ``PATH`` and renamed onto ``PATH`` (atomic, see
:mod:`hier_envs.atomic_io`), compressed by default::

    dataset.npz
    ├── observations     (N_steps + N_episodes, ceil(D / 8)) uint8  grid: np.packbits of the 0/1 features
    │                    (N_steps + N_episodes, D)            float32  continuous envs (ant)
    ├── actions          (N_steps,)           int64   grid: action id 0..3
    │                    (N_steps, act_dim)   float32  ant: torques
    ├── subgoals         (N_steps,)           int64   info["subgoal"] of the observation a_t was taken from
    ├── episode_lengths  (N_episodes,)        int64   T_i, the number of actions of episode i
    ├── episode_success  (N_episodes,)        bool
    ├── episode_tasks    (N_episodes, max_task_len) int64  the task's colour ids, padded with -1
    └── metadata         ()  unicode        JSON, see below

    episode i: actions[s_i : s_i + T_i], observations[s_i + i : s_i + i + T_i + 1],
    where s_i = T_0 + ... + T_{i-1}.

``metadata`` (JSON object): ``schema_version`` (1), ``kind`` (``"grid"`` or ``"ant"``),
``env_id``, ``generator`` (expert and its config: episodes, epsilon, seed, only_success, how
the streams are seeded), ``env_config``, ``obs_dim`` (D), ``obs_encoding`` (``"packbits"`` or
``"float32"``), ``action_space`` (``{"type": "Discrete", "n": 4}`` or a Box spec),
``n_actions`` (grid), ``counts`` (``episodes``, ``steps``, ``discarded_failures``),
``versions`` (numpy, gymnasium, hier_rl), ``created`` (UTC ISO time), ``sha256`` and
``metadata_sha256``.

``sha256`` is the hex digest of the data arrays only, in the fixed order of
:data:`DATA_KEYS`, each preceded by ``"<key>|<dtype>|<shape>\\n"``. It excludes the metadata
so that generating twice with the same seed gives the same digest (the creation time and
versions differ). ``metadata_sha256`` (:func:`metadata_sha256`) covers the metadata that
callers rely on (generator config, seed, ``env_id``, ``env_config``, counts, …): the sha256 of
its canonical JSON without :data:`VOLATILE_METADATA_KEYS` (``created``, ``versions``,
``generation_seconds``: provenance that differs between otherwise identical runs, so the same
arguments still give the same digest; and the two digests themselves). :func:`save_dataset`
writes it. :func:`load_dataset` checks the schema version, the presence, dtypes and shapes of
all arrays, the counts in the metadata and both digests; a truncated, tampered or inconsistent
file raises :class:`DatasetError` naming the file (SPEC B3). Files written before
``metadata_sha256`` existed have no such field and still load, verified on their arrays only
(their metadata cannot be checked).
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np

from hier_envs.atomic_io import atomic_write

__all__ = [
    "DATA_KEYS",
    "KINDS",
    "METADATA_DIGEST_KEY",
    "OBS_ENCODINGS",
    "SCHEMA_VERSION",
    "VOLATILE_METADATA_KEYS",
    "DatasetError",
    "EpisodeDataset",
    "arrays_sha256",
    "load_dataset",
    "metadata_sha256",
    "save_dataset",
]

SCHEMA_VERSION = 1
"""Version of the on-disk format; :func:`load_dataset` refuses any other."""

DATA_KEYS: tuple[str, ...] = (
    "observations",
    "actions",
    "subgoals",
    "episode_lengths",
    "episode_success",
    "episode_tasks",
)
"""The data arrays of a dataset file, in the order the sha256 digest covers them."""

OBS_ENCODINGS = ("packbits", "float32")
"""``packbits``: 0/1 features bit-packed along the feature axis (grid); ``float32``: raw (ant)."""

KINDS = ("grid", "ant")
"""Dataset kinds: which env family generated the episodes."""

METADATA_DIGEST_KEY = "metadata_sha256"
"""Metadata field holding :func:`metadata_sha256`; absent in files written before it existed."""

VOLATILE_METADATA_KEYS: tuple[str, ...] = ("created", "versions", "generation_seconds", "sha256", METADATA_DIGEST_KEY)
"""Metadata fields :func:`metadata_sha256` leaves out: provenance that changes between otherwise
identical generations (time, library versions, wall time) and the digests themselves (the arrays'
``sha256`` is checked against the arrays)."""


class DatasetError(ValueError):
    """A dataset file or array set is unreadable, inconsistent or fails its checksum (SPEC B3)."""


# ---------------------------------------------------------------------------------- checksum
def arrays_sha256(arrays: Mapping[str, np.ndarray]) -> str:
    """sha256 of the data arrays in :data:`DATA_KEYS` order, with their dtypes and shapes."""
    digest = hashlib.sha256()
    for key in DATA_KEYS:
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}|{array.dtype.str}|{array.shape}\n".encode())
        digest.update(array.reshape(-1).view(np.uint8))
    return digest.hexdigest()


def metadata_sha256(metadata: Mapping[str, Any]) -> str:
    """sha256 of ``metadata``'s canonical JSON (sorted keys, no spaces) without
    :data:`VOLATILE_METADATA_KEYS`, so a rewritten generator config, seed or env id is caught
    on load (SPEC B3 "tampered file fails")."""
    kept = {key: value for key, value in metadata.items() if key not in VOLATILE_METADATA_KEYS}
    canonical = json.dumps(kept, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


# ----------------------------------------------------------------------------------- dataset
@dataclass(frozen=True, eq=False)
class EpisodeDataset:
    """Expert episodes stored back to back, with their metadata (SPEC B3).

    Arrays keep their on-disk form (grid observations stay bit-packed, 80 bytes per step) and
    are read-only; :meth:`episode` and :meth:`padded_batch` decode observations to float32 on
    demand. Construct with :func:`generate_grid_dataset`, :func:`load_dataset`, or directly
    from arrays in the format drawn in the module docstring (validated; ``metadata`` needs at
    least ``kind``, ``obs_dim`` and ``obs_encoding``).
    """

    observations: np.ndarray
    """``(N_steps + N_episodes, ceil(D/8))`` uint8 (packbits) or ``(…, D)`` float32."""
    actions: np.ndarray
    """``(N_steps,)`` int64 (grid) or ``(N_steps, act_dim)`` float32 (ant)."""
    subgoals: np.ndarray
    """``(N_steps,)`` int64: ground-truth subgoal when each action was taken (analysis only)."""
    episode_lengths: np.ndarray
    """``(N_episodes,)`` int64: actions per episode."""
    episode_success: np.ndarray
    """``(N_episodes,)`` bool."""
    episode_tasks: np.ndarray
    """``(N_episodes, max_task_len)`` int64, padded with -1."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """JSON-serialisable description (module docstring)."""

    def __post_init__(self) -> None:
        arrays = _validate_arrays(
            {key: getattr(self, key) for key in DATA_KEYS}, self.metadata, source="EpisodeDataset"
        )
        for key, array in arrays.items():
            view = array.view()
            view.flags.writeable = False
            object.__setattr__(self, key, view)
        lengths = self.episode_lengths
        step_starts = np.zeros(len(lengths), dtype=np.int64)
        np.cumsum(lengths[:-1], out=step_starts[1:])
        object.__setattr__(self, "_step_starts", step_starts)
        object.__setattr__(self, "_obs_starts", step_starts + np.arange(len(lengths), dtype=np.int64))

    # ------------------------------------------------------------------ sizes
    @property
    def n_episodes(self) -> int:
        return int(self.episode_lengths.shape[0])

    @property
    def n_steps(self) -> int:
        """Total number of actions (transitions)."""
        return int(self.actions.shape[0])

    @property
    def step_starts(self) -> np.ndarray:
        """``(N,)`` row of each episode's first step in the per-step arrays (read-only)."""
        view = self._step_starts.view()
        view.flags.writeable = False
        return view

    @property
    def obs_dim(self) -> int:
        return int(self.metadata["obs_dim"])

    @property
    def obs_encoding(self) -> str:
        return str(self.metadata["obs_encoding"])

    @property
    def sha256(self) -> str:
        """Digest of the data arrays (see :func:`arrays_sha256`)."""
        return arrays_sha256(self.arrays())

    def provenance(self) -> dict[str, Any]:
        """What a result built on this dataset records of it: its sha256, env, generator, sizes,
        discarded failures and generation time (from the metadata, None where absent), so a rerun
        elsewhere can check it trained on the same data before comparing numbers."""
        counts = self.metadata.get("counts", {})
        return {
            "sha256": self.sha256, "env_id": self.metadata.get("env_id"), "generator": self.metadata.get("generator"),
            "episodes": self.n_episodes, "steps": self.n_steps,
            "discarded_failures": counts.get("discarded_failures"),
            "generation_seconds": self.metadata.get("generation_seconds"),
        }

    def __len__(self) -> int:
        return self.n_episodes

    def __repr__(self) -> str:
        return (
            f"EpisodeDataset(kind={self.metadata.get('kind')!r}, env_id={self.metadata.get('env_id')!r}, "
            f"episodes={self.n_episodes}, steps={self.n_steps}, obs_dim={self.obs_dim})"
        )

    def arrays(self) -> dict[str, np.ndarray]:
        """The data arrays in :data:`DATA_KEYS` order (read-only views)."""
        return {key: getattr(self, key) for key in DATA_KEYS}

    # --------------------------------------------------------------- decoding
    def decode_observations(self, rows: np.ndarray) -> np.ndarray:
        """Observations at stored rows ``rows`` (any shape) as float32 ``(*rows.shape, D)``."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.obs_encoding == "float32":
            return self.observations[rows]
        # most significant bit first: np.packbits' default order, as written
        return np.unpackbits(self.observations[rows], axis=-1, count=self.obs_dim).astype(np.float32)

    def episode(self, index: int) -> dict[str, Any]:
        """Episode ``index``: ``observations`` (T+1, D) float32, ``actions`` (T,…), ``subgoals`` (T,),
        plus ``task`` (tuple) and ``success`` (bool)."""
        if isinstance(index, bool) or not isinstance(index, Integral):
            raise TypeError(f"episode index must be an int, got {index!r}")
        if not 0 <= index < self.n_episodes:
            raise IndexError(f"episode index {index} out of range for {self.n_episodes} episodes")
        length = int(self.episode_lengths[index])
        step = int(self._step_starts[index])
        obs = int(self._obs_starts[index])
        task = self.episode_tasks[index]
        return {
            "observations": self.decode_observations(np.arange(obs, obs + length + 1)),
            "actions": self.actions[step : step + length].copy(),
            "subgoals": self.subgoals[step : step + length].copy(),
            "task": tuple(int(c) for c in task[task >= 0]),
            "success": bool(self.episode_success[index]),
        }

    def padded_batch(self, indices: Sequence[int] | np.ndarray, max_len: int | None = None) -> dict[str, np.ndarray]:
        """A padded batch of episodes for sequence-model training (SPEC A§3.1, B4).

        With ``L = max_len`` (default: the longest selected episode; longer episodes keep their
        first ``L`` steps) and ``B = len(indices)``:

        - ``observations`` ``(B, L, D)`` float32: ``o_1 … o_L``, zero where padded;
        - ``next_observations`` ``(B, L, D)`` float32: ``o_2 … o_{L+1}``, zero where padded;
        - ``actions`` ``(B, L)`` int64 padded with -1 (ant: ``(B, L, act_dim)`` float32, zeros);
        - ``subgoals`` ``(B, L)`` int64 padded with -1;
        - ``mask`` ``(B, L)`` bool, True on real steps; ``lengths`` ``(B,)`` int64 = mask.sum(1).
        """
        indices = self._check_indices(indices)
        lengths = self.episode_lengths[indices]
        if max_len is None:
            max_len = int(lengths.max()) if len(indices) else 0
        elif isinstance(max_len, bool) or not isinstance(max_len, Integral) or max_len < 1:
            raise ValueError(f"max_len must be a positive int or None, got {max_len!r}")
        max_len = int(max_len)
        steps = np.minimum(lengths, max_len)  # (B,)
        mask = np.arange(max_len)[None, :] < steps[:, None]  # (B, L)
        batch_pos, time_pos = np.nonzero(mask)  # valid (b, t) pairs
        act_rows = self._step_starts[indices][batch_pos] + time_pos
        batch = len(indices)
        observations, next_observations = self._padded_observations(indices, steps, max_len)
        if self.actions.ndim == 1:
            actions = np.full((batch, max_len), -1, dtype=self.actions.dtype)
        else:
            actions = np.zeros((batch, max_len, self.actions.shape[1]), dtype=self.actions.dtype)
        actions[batch_pos, time_pos] = self.actions[act_rows]
        subgoals = np.full((batch, max_len), -1, dtype=np.int64)
        subgoals[batch_pos, time_pos] = self.subgoals[act_rows]
        return {
            "observations": observations,
            "next_observations": next_observations,
            "actions": actions,
            "subgoals": subgoals,
            "mask": mask,
            "lengths": steps.astype(np.int64),
        }

    def _padded_observations(self, indices: np.ndarray, steps: np.ndarray, max_len: int) -> tuple[np.ndarray, np.ndarray]:
        """``o_{1:L}`` and ``o_{2:L+1}`` of :meth:`padded_batch`, ``(B, L, D)`` float32 each.

        Each episode's stored rows ``o_1 … o_{steps+1}`` are gathered once into a padded
        ``(B, L+1)`` frame (zero beyond), decoded once and read at two offsets: half the decoding
        and none of the scatter of filling both arrays row by row (grid ``default`` D: 0.062 s for
        a batch of 1,024 episodes, ``results/batch_assembly_speed.json``).
        """
        frame_t = np.arange(max_len + 1)  # (L+1,)
        valid = frame_t[None, :] <= steps[:, None]  # (B, L+1): rows o_1 … o_{steps+1}
        rows = np.where(valid, self._obs_starts[indices][:, None] + frame_t[None, :], 0)
        stored = self.observations[rows]  # (B, L+1, bytes) packed bits, or (B, L+1, D) float32
        stored[~valid] = 0
        if self.obs_encoding == "float32":
            frames = stored
        else:  # most significant bit first: np.packbits' default order, as written
            frames = np.unpackbits(stored, axis=-1, count=self.obs_dim)  # (B, L+1, D) uint8
        observations = frames[:, :max_len].astype(np.float32)  # copies: o_{steps+1} is zeroed next
        short = np.flatnonzero(steps < max_len)
        observations[short, steps[short]] = 0.0
        return observations, frames[:, 1:].astype(np.float32)

    def split(self, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Random (train, validation) episode-index arrays, each sorted; ``round(val_fraction·N)``
        episodes go to validation. ``seed`` (a non-negative int) fixes the split: the same seed
        gives the same split. Use :meth:`subset` to turn them into datasets."""
        if isinstance(val_fraction, bool) or not isinstance(val_fraction, Real) or not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
        if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
            # None would draw from OS entropy: a different split on every call (SPEC B4 determinism)
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        order = np.random.default_rng(int(seed)).permutation(self.n_episodes)
        n_val = int(round(float(val_fraction) * self.n_episodes))
        return np.sort(order[n_val:]), np.sort(order[:n_val])

    def subset(self, indices: Sequence[int] | np.ndarray) -> EpisodeDataset:
        """A new dataset holding episodes ``indices`` in that order (metadata counts updated)."""
        indices = self._check_indices(indices)
        lengths = self.episode_lengths[indices]
        step_rows = _ranges(self._step_starts[indices], lengths)
        obs_rows = _ranges(self._obs_starts[indices], lengths + 1)
        metadata = json.loads(json.dumps(self.metadata))
        metadata["counts"] = {
            **metadata.get("counts", {}),
            "episodes": int(len(indices)),
            "steps": int(lengths.sum()),
        }
        metadata["subset_of"] = self.metadata.get("sha256")
        metadata.pop(METADATA_DIGEST_KEY, None)  # describes the parent's metadata; save_dataset writes a new one
        dataset = EpisodeDataset(
            observations=self.observations[obs_rows],
            actions=self.actions[step_rows],
            subgoals=self.subgoals[step_rows],
            episode_lengths=lengths.copy(),
            episode_success=self.episode_success[indices],
            episode_tasks=self.episode_tasks[indices],
            metadata=metadata,
        )
        dataset.metadata["sha256"] = dataset.sha256
        return dataset

    def _check_indices(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        array = np.asarray(indices)
        if array.ndim != 1 or (array.size and not np.issubdtype(array.dtype, np.integer)):
            raise TypeError(f"indices must be a 1-D array of episode ids, got {indices!r}")
        array = array.astype(np.int64)
        if array.size and (array.min() < 0 or array.max() >= self.n_episodes):
            raise IndexError(
                f"episode indices must be in [0, {self.n_episodes}), got min {array.min()} max {array.max()}"
            )
        return array


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + n)`` for each (s, n), without a Python loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return offsets + np.arange(total, dtype=np.int64)


# -------------------------------------------------------------------------------- validation
def _validate_arrays(arrays: Mapping[str, Any], metadata: Mapping[str, Any], source: str) -> dict[str, np.ndarray]:
    """Check presence, dtypes and shapes of the data arrays against each other and ``metadata``."""

    def fail(message: str) -> DatasetError:
        return DatasetError(f"{source}: {message}")

    if not isinstance(metadata, Mapping):
        raise fail(f"metadata must be a dict, got {type(metadata).__name__}")
    missing = [key for key in DATA_KEYS if key not in arrays]
    if missing:
        raise fail(f"missing arrays {missing}")
    for key in ("kind", "obs_dim", "obs_encoding"):
        if key not in metadata:
            raise fail(f"metadata lacks {key!r} (has {sorted(metadata)})")
    kind, obs_dim, encoding = metadata["kind"], metadata["obs_dim"], metadata["obs_encoding"]
    if kind not in KINDS:
        raise fail(f"metadata kind {kind!r} is not one of {KINDS}")
    if encoding not in OBS_ENCODINGS:
        raise fail(f"metadata obs_encoding {encoding!r} is not one of {OBS_ENCODINGS}")
    if isinstance(obs_dim, bool) or not isinstance(obs_dim, int) or obs_dim < 1:
        raise fail(f"metadata obs_dim must be a positive int, got {obs_dim!r}")

    env_config = metadata.get("env_config")
    if kind == "grid" and isinstance(env_config, Mapping):
        try:
            grid_dim = env_config["grid_size"] ** 2 * (env_config["n_walls"] + env_config["n_colors"] + 1)
        except (KeyError, TypeError) as exc:
            raise fail(f"metadata env_config is incomplete: {env_config!r}") from exc
        if obs_dim != grid_dim:
            raise fail(f"metadata obs_dim {obs_dim} disagrees with env_config {dict(env_config)} (expects {grid_dim})")

    out = {key: np.asarray(arrays[key]) for key in DATA_KEYS}
    grid_actions = kind == "grid"
    expected = {
        "observations": (np.uint8 if encoding == "packbits" else np.float32, 2),
        "actions": (np.int64 if grid_actions else np.float32, 1 if grid_actions else 2),
        "subgoals": (np.int64, 1),
        "episode_lengths": (np.int64, 1),
        "episode_success": (np.bool_, 1),
        "episode_tasks": (np.int64, 2),
    }
    for key, (dtype, ndim) in expected.items():
        array = out[key]
        if array.dtype != dtype or array.ndim != ndim:
            raise fail(
                f"array {key!r} must be {ndim}-D {np.dtype(dtype).name}, got shape {array.shape} {array.dtype}"
            )
    lengths = out["episode_lengths"]
    n_episodes = lengths.shape[0]
    if n_episodes and lengths.min() < 0:
        raise fail(f"episode_lengths has a negative entry {lengths.min()}")
    n_steps = int(lengths.sum())
    width = (obs_dim + 7) // 8 if encoding == "packbits" else obs_dim
    shapes = {
        "observations": (n_steps + n_episodes, width),
        "actions": (n_steps, *out["actions"].shape[1:]),
        "subgoals": (n_steps,),
        "episode_success": (n_episodes,),
        "episode_tasks": (n_episodes, out["episode_tasks"].shape[1]),
    }
    for key, shape in shapes.items():
        if out[key].shape != shape:
            raise fail(
                f"array {key!r} has shape {out[key].shape}, expected {shape} for {n_episodes} episodes, "
                f"{n_steps} steps and obs_dim {obs_dim}"
            )
    counts = metadata.get("counts")
    if counts is not None:
        if not isinstance(counts, Mapping):
            raise fail(f"metadata counts must be a dict, got {counts!r}")
        for key, value in (("episodes", n_episodes), ("steps", n_steps)):
            if key in counts and counts[key] != value:
                raise fail(f"metadata counts[{key!r}] = {counts[key]!r} but the arrays hold {value}")
    return out


# ------------------------------------------------------------------------------- save / load
def save_dataset(
    dataset: EpisodeDataset | Mapping[str, Any], path: str | os.PathLike[str], compress: bool = True
) -> Path:
    """Write ``dataset`` to ``path`` atomically (a temporary file beside it, then ``os.replace``;
    :func:`~hier_envs.atomic_io.atomic_write`) (SPEC B3).

    ``dataset`` is an :class:`EpisodeDataset` or a mapping with the :data:`DATA_KEYS` arrays and a
    ``metadata`` dict. ``schema_version``, ``counts`` (episodes, steps) and ``sha256`` are filled
    in from the arrays, ``metadata_sha256`` from the resulting metadata. Parent directories are
    created. Returns the path written.
    """
    if not isinstance(dataset, EpisodeDataset):
        if not isinstance(dataset, Mapping):
            raise TypeError(f"dataset must be an EpisodeDataset or a mapping of arrays, got {type(dataset).__name__}")
        unknown = set(dataset) - set(DATA_KEYS) - {"metadata"}
        if unknown:
            raise ValueError(f"unexpected keys {sorted(unknown)}; expected {list(DATA_KEYS)} and 'metadata'")
        dataset = EpisodeDataset(**{key: dataset[key] for key in DATA_KEYS}, metadata=dict(dataset.get("metadata", {})))
    path = Path(path)
    arrays = dataset.arrays()
    metadata = json.loads(json.dumps(dataset.metadata))  # deep copy; proves it is JSON-serialisable
    metadata["schema_version"] = SCHEMA_VERSION
    metadata["counts"] = {
        "discarded_failures": 0,
        **metadata.get("counts", {}),
        "episodes": dataset.n_episodes,
        "steps": dataset.n_steps,
    }
    metadata["sha256"] = arrays_sha256(arrays)
    metadata[METADATA_DIGEST_KEY] = metadata_sha256(metadata)
    writer = np.savez_compressed if compress else np.savez
    with atomic_write(path) as handle:
        writer(handle, metadata=np.array(json.dumps(metadata, sort_keys=True)), **arrays)
    return path


def load_dataset(path: str | os.PathLike[str]) -> EpisodeDataset:
    """Read and verify a dataset file (SPEC B3).

    Checks that it is a readable zip, the schema version, the presence, dtypes and shapes of
    every array, the metadata counts, the arrays' sha256 and, when the file has one, the
    metadata's ``metadata_sha256`` (files written before it existed are verified on their arrays
    only). Any failure raises :class:`DatasetError` naming the file; a missing file raises
    ``FileNotFoundError``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no dataset file at {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = set(archive.files)
            expected = set(DATA_KEYS) | {"metadata"}
            if keys != expected:
                raise DatasetError(
                    f"{path}: not a hier-rl dataset: missing {sorted(expected - keys)}, "
                    f"unexpected {sorted(keys - expected)}"
                )
            raw_metadata = archive["metadata"]
            arrays = {key: archive[key] for key in DATA_KEYS}
    except DatasetError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as exc:
        raise DatasetError(f"{path}: cannot read dataset file (truncated or corrupt?): {exc}") from exc
    if raw_metadata.shape != () or raw_metadata.dtype.kind not in "US":
        raise DatasetError(
            f"{path}: metadata must be a 0-d string array, got {raw_metadata.dtype} {raw_metadata.shape}"
        )
    try:
        metadata = json.loads(raw_metadata.item())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: metadata is not valid JSON: {exc}") from exc
    if not isinstance(metadata, dict):
        raise DatasetError(f"{path}: metadata must be a JSON object, got {type(metadata).__name__}")
    version = metadata.get("schema_version")
    if version != SCHEMA_VERSION:
        raise DatasetError(f"{path}: schema_version {version!r} is not supported; this hier-rl reads {SCHEMA_VERSION}")
    _validate_arrays(arrays, metadata, source=str(path))
    stored = metadata.get("sha256")
    actual = arrays_sha256(arrays)
    if stored != actual:
        raise DatasetError(f"{path}: sha256 mismatch (metadata {stored!r}, arrays {actual!r}); the file was modified")
    if METADATA_DIGEST_KEY in metadata:
        stored_metadata, actual_metadata = metadata[METADATA_DIGEST_KEY], metadata_sha256(metadata)
        if stored_metadata != actual_metadata:
            raise DatasetError(
                f"{path}: metadata_sha256 mismatch (stored {stored_metadata!r}, metadata {actual_metadata!r}); "
                "the metadata was modified"
            )
    return EpisodeDataset(**arrays, metadata=metadata)
