"""Direction-conditioned ant locomotion: yaw-invariant features and the shipped policy (SPEC B3).

The ant expert is a grid-level shortest-path planner feeding a *direction-conditioned*
locomotion policy (SPEC B3). This module holds the policy's side of that contract:

- :func:`locomotion_features` turns the MuJoCo state (``qpos``, ``qvel``) and a commanded
  world-frame walking direction into the policy's input. Everything is expressed in the
  *heading frame* (the torso's yaw removed), so one policy walks the same way in every
  direction the planner asks for; the ant's own x, y never enter.
- :class:`LocomotionPolicy` is the trained Gaussian MLP as plain numpy arrays (the small
  weights file shipped in ``hier_envs/experts/weights/``), with the observation normaliser it
  was trained with. ``act(..., deterministic=True)`` is the Gaussian mean (dataset D*), and
  ``deterministic=False`` samples (dataset D), as SPEC A§2.3 describes for the paper's expert.

The policy is trained by :mod:`hier_envs.experts.train_ant_locomotion` on
:class:`~hier_envs.experts.ant_direction_env.AntDirectionEnv` (open floor, random commanded
directions). Nothing here imports torch: the expert runs wherever the envs run.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np

WEIGHTS_PATH = Path(__file__).parent / "weights" / "ant_locomotion.npz"
"""The shipped locomotion policy (written by ``train_ant_locomotion``)."""

N_FEATURES = 28
"""torso z (1), gravity in the torso frame (3), joint angles (8), heading-frame linear velocity
(3), torso-frame angular velocity (3), joint velocities (8), commanded direction in the heading
frame (2)."""

OBS_CLIP = 10.0
"""Normalised features are clipped to ±this, as SB3's ``VecNormalize`` does while training."""


def torso_yaw(qpos: np.ndarray) -> float:
    """Yaw (rad) of the torso quaternion ``qpos[3:7]`` = (w, x, y, z)."""
    w, x, y, z = qpos[3:7]
    return float(np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z)))


def locomotion_features(qpos: np.ndarray, qvel: np.ndarray, direction_xy: np.ndarray) -> np.ndarray:
    """The policy input for the ant state (``qpos`` (15,), ``qvel`` (14,)) and a world direction.

    ``direction_xy`` is the commanded walking direction in world axes; it is normalised here
    (a zero vector raises ``ValueError``). MuJoCo's free joint stores the linear velocity in
    world axes and the angular velocity in the torso frame; the linear velocity is rotated into
    the heading frame, so the features do not change when the whole scene is rotated about z.
    """
    direction = np.asarray(direction_xy, dtype=np.float64)
    if direction.shape != (2,):
        raise ValueError(f"direction_xy must be a 2-vector, got shape {direction.shape}: {direction_xy!r}")
    norm = float(np.hypot(direction[0], direction[1]))
    if not np.isfinite(norm) or norm == 0.0:
        raise ValueError(f"direction_xy must be a finite non-zero 2-vector, got {direction_xy!r}")
    w, x, y, z = qpos[3:7]
    yaw = torso_yaw(qpos)
    cos_yaw, sin_yaw = np.cos(yaw), np.sin(yaw)
    vx, vy = qvel[0], qvel[1]
    dx, dy = direction[0] / norm, direction[1] / norm
    features = np.empty(N_FEATURES, dtype=np.float64)
    features[0] = qpos[2]
    # Third row of the torso rotation matrix: the world z axis seen from the torso.
    features[1:4] = (2.0 * (x * z - w * y), 2.0 * (y * z + w * x), 1.0 - 2.0 * (x * x + y * y))
    features[4:12] = qpos[7:15]
    features[12:15] = (cos_yaw * vx + sin_yaw * vy, -sin_yaw * vx + cos_yaw * vy, qvel[2])
    features[15:18] = qvel[3:6]
    features[18:26] = qvel[6:14]
    features[26:28] = (cos_yaw * dx + sin_yaw * dy, -sin_yaw * dx + cos_yaw * dy)
    return features


class LocomotionPolicy:
    """The trained Gaussian MLP policy ``features → torques`` as numpy arrays.

    Loaded from an ``.npz`` holding ``obs_mean``, ``obs_var`` (the training normaliser),
    ``w0, b0, w1, b1, …`` (hidden layers, ReLU), ``w_out``, ``b_out`` (action mean) and ``log_std``
    (state-independent, SB3's PPO parameterisation), plus ``meta`` (JSON: training config and
    sha256 of the arrays). A file whose arrays do not match its recorded sha256 raises.
    """

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict) -> None:
        self.obs_mean = arrays["obs_mean"]
        self.obs_std = np.sqrt(arrays["obs_var"] + 1e-8)
        n_hidden = sum(1 for key in arrays if key.startswith("w") and key[1:].isdigit())
        self.hidden = [(arrays[f"w{i}"], arrays[f"b{i}"]) for i in range(n_hidden)]
        self.w_out, self.b_out = arrays["w_out"], arrays["b_out"]
        self.std = np.exp(arrays["log_std"])
        self.meta = meta
        if self.obs_mean.shape != (N_FEATURES,) or self.w_out.shape[1] != 8:
            raise ValueError(f"locomotion weights have input {self.obs_mean.shape} / output {self.w_out.shape}, "
                             f"expected ({N_FEATURES},) features and 8 actions")

    @classmethod
    def load(cls, path: str | Path = WEIGHTS_PATH) -> LocomotionPolicy:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no locomotion weights at {path}; train them with "
                                    "`python -m hier_envs.experts.train_ant_locomotion`")
        try:
            with np.load(path, allow_pickle=False) as file:
                arrays = {key: file[key] for key in file.files}
            meta = json.loads(str(arrays.pop("meta")))
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
            raise ValueError(f"{path} is not a readable locomotion-weights file: {err}") from err
        if weights_sha256(arrays) != meta.get("sha256"):
            raise ValueError(f"{path}: arrays do not match the recorded sha256 (corrupt or edited file)")
        return cls({key: value.astype(np.float64) for key, value in arrays.items()}, meta)

    def mean_action(self, features: np.ndarray) -> np.ndarray:
        """Gaussian mean for ``features`` of shape ``(..., N_FEATURES)``, before clipping."""
        h = np.clip((features - self.obs_mean) / self.obs_std, -OBS_CLIP, OBS_CLIP)
        for weight, bias in self.hidden:
            h = np.maximum(h @ weight + bias, 0.0)
        return h @ self.w_out + self.b_out

    def act(self, features: np.ndarray, deterministic: bool, rng: np.random.Generator | None = None) -> np.ndarray:
        """Torques in [-1, 1]: the mean, or a sample from the Gaussian (needs ``rng``), clipped
        as MuJoCo's ``ctrlrange`` would."""
        mean = self.mean_action(features)
        if not deterministic:
            if rng is None:
                raise ValueError("sampling actions (deterministic=False) needs an rng")
            mean = mean + self.std * rng.standard_normal(mean.shape)
        return np.clip(mean, -1.0, 1.0)


def weights_sha256(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over the arrays' names, dtypes, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        value = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}|{value.dtype.str}|{value.shape}|".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()
