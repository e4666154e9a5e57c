"""Observation wrappers for stock-library baselines (SPEC B2, last bullet).

The pinpad observation carries no task descriptor and no visited-so-far flags (SPEC A§2.1), so
it is not Markov for an ordered task: a memoryless agent cannot tell whether it should head for
colour 0 at the start or after eight visits. Stock baselines therefore run either as recurrent
agents on the raw observation (faithful) or as memoryless agents behind
:class:`PrivilegedProgressWrapper`, which appends the task progress. Results from the latter
are labelled *privileged* in every table (SPEC B2, B6).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

__all__ = ["PrivilegedProgressWrapper"]


class PrivilegedProgressWrapper(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """PRIVILEGED: append the task progress to the observation (SPEC B2, last bullet).

    This wrapper hands the agent information the paper's agents never see: which colour comes
    next and how far along the task the episode is. It exists only so that memoryless stock
    baselines (PPO, DQN) can act at all; their results must be labelled *privileged*.

    ## Observation Space
    ``Box(float32)`` of size ``base + n_colors + (max_task_length + 1)``:

    | slice | content |
    |---|---|
    | ``[0, base)`` | the wrapped env's observation, unchanged |
    | ``[base, base + n_colors)`` | one-hot of ``next_color``; all zeros once the episode is over |
    | ``[base + n_colors, end)`` | one-hot of ``colors_visited`` in ``0 … max_task_length`` |

    ``colors_visited`` is one-hot rather than a normalised scalar so that a linear layer can
    tell, e.g., the first visit to colour 0 from the second one in 0-1-…-7-0-1-2-3 without
    learning thresholds; the one-hot also keeps the whole observation in ``[0, 1]``.

    ## Arguments
    - ``env``: an env whose ``unwrapped`` exposes ``n_colors``, ``tasks`` (the task pool) and
      ``progress`` (a :class:`hier_envs.tasks.TaskProgress`, ``None`` before the first reset) —
      the grid and ant pinpad envs.
    - ``max_task_length`` (default: the longest task in ``env.unwrapped.tasks``): the size of
      the progress one-hot. Pinning a longer task with ``reset(options={"task": ...})`` raises.

    It reads only the env's public progress state, never the layout or the subgoal label.
    """

    def __init__(self, env: gym.Env, max_task_length: int | None = None) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, max_task_length=max_task_length)
        gym.ObservationWrapper.__init__(self, env)
        base = env.unwrapped
        for attribute in ("n_colors", "tasks", "progress"):
            if not hasattr(base, attribute):
                raise TypeError(
                    f"PrivilegedProgressWrapper needs an env with a public {attribute!r} attribute "
                    f"(the pinpad envs); {type(base).__name__} has none"
                )
        if not isinstance(env.observation_space, spaces.Box) or len(env.observation_space.shape) != 1:
            raise TypeError(
                f"PrivilegedProgressWrapper needs a flat Box observation space, got {env.observation_space!r}"
            )
        longest = max(len(task) for task in base.tasks)
        if max_task_length is None:
            max_task_length = longest
        if isinstance(max_task_length, bool) or not isinstance(max_task_length, int) or max_task_length < longest:
            raise ValueError(
                f"max_task_length must be an int >= the longest task of the env ({longest}), got {max_task_length!r}"
            )
        self.n_colors = int(base.n_colors)
        self.max_task_length = max_task_length
        self.base_size = int(env.observation_space.shape[0])
        self.progress_size = self.n_colors + self.max_task_length + 1
        low = np.concatenate([env.observation_space.low.astype(np.float32), np.zeros(self.progress_size, np.float32)])
        high = np.concatenate([env.observation_space.high.astype(np.float32), np.ones(self.progress_size, np.float32)])
        self.observation_space = spaces.Box(low, high, dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """The env's reset, refusing first a pinned task longer than ``max_task_length``: checked
        after the inner reset, it would leave the inner env in an episode whose every step raises."""
        task = options.get("task") if isinstance(options, dict) else None
        if task is not None and hasattr(task, "__len__") and len(task) > self.max_task_length:
            raise ValueError(
                f"task {task!r} has {len(task)} colours, more than max_task_length={self.max_task_length}; "
                "build the wrapper with a larger max_task_length"
            )
        return super().reset(seed=seed, options=options)

    def progress_features(self) -> np.ndarray:
        """The appended part for the env's current state: ``(n_colors + max_task_length + 1,)``."""
        progress = self.env.unwrapped.progress
        if progress is None:
            raise RuntimeError("call reset() before reading the progress")
        if len(progress.task) > self.max_task_length:
            raise ValueError(
                f"task {progress.task!r} has {len(progress.task)} colours, more than max_task_length="
                f"{self.max_task_length}; build the wrapper with a larger max_task_length"
            )
        features = np.zeros(self.progress_size, dtype=np.float32)
        if progress.next_color is not None:
            features[progress.next_color] = 1.0
        features[self.n_colors + progress.colors_visited] = 1.0
        return features

    def observation(self, observation: Any) -> np.ndarray:
        observation = np.asarray(observation, dtype=np.float32)
        return np.concatenate([observation, self.progress_features()])
