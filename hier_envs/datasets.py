"""Behaviour datasets: expert episodes generated into the on-disk format (SPEC A§2.3, B3).

Dataset D (sequence-model pretraining) uses the configured expert noise ε; D* (linear
controllers and metacontroller) uses ε = 0 (SPEC B3). The format itself (arrays, metadata,
checksums, :func:`save_dataset` / :func:`load_dataset`) is :mod:`hier_envs.dataset_format`; its
public names are re-exported here, so ``from hier_envs.datasets import load_dataset`` works.

Command line::

    python -m hier_envs.datasets grid --episodes 10000 --epsilon 0.0 --out data/grid_dstar.npz
    python -m hier_envs.datasets ant --episodes 2000 --sample --out data/ant_d.npz   # D (sampled torques)
    python -m hier_envs.datasets ant --episodes 500 --out data/ant_dstar.npz          # D* (mean torques)
    python -m hier_envs.datasets info data/grid_dstar.npz
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from hier_envs import dataset_format
from hier_envs.dataset_format import *  # noqa: F403  (re-exported: the format is part of this module's API)
from hier_envs.dataset_format import SCHEMA_VERSION, DatasetError, EpisodeDataset, load_dataset, save_dataset
from hier_envs.experts.grid_expert import GridExpert
from hier_envs.grid import HierGridEnv

__all__ = [*dataset_format.__all__, "generate_ant_dataset", "generate_grid_dataset", "main"]


# -------------------------------------------------------------------------------- generation
def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        hier_rl = version("hier-rl")
    except PackageNotFoundError:
        hier_rl = "unknown"
    return {"numpy": np.__version__, "gymnasium": gym.__version__, "hier_rl": hier_rl}


def _check_generation_args(n_episodes: object, seed: object, env_id: str, family: str) -> tuple[int, int]:
    if isinstance(n_episodes, bool) or not isinstance(n_episodes, Integral) or n_episodes < 1:
        raise ValueError(f"n_episodes must be a positive int, got {n_episodes!r}")
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if env_id not in gym.registry:
        family_ids = [i for i in gym.registry if i.startswith(family)]
        raise ValueError(f"unknown env id {env_id!r}; {family} ids are {family_ids}")
    return int(n_episodes), int(seed)


def _check_max_attempts(max_attempts: object, default: int) -> int:
    """``max_attempts`` as a positive int (``default`` for ``None``), else ``ValueError`` naming it:
    0, a negative or a fractional budget would stop generation with a misleading message."""
    if max_attempts is None:
        return default
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, Integral) or max_attempts < 1:
        raise ValueError(f"max_attempts must be a positive int or None, got {max_attempts!r}")
    return int(max_attempts)


@dataclass
class _CollectedEpisodes:
    """Kept episodes of one generation run, in order, before they become an :class:`EpisodeDataset`."""

    observations: list[np.ndarray] = field(default_factory=list)
    actions: list[Any] = field(default_factory=list)
    subgoals: list[int] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    successes: list[bool] = field(default_factory=list)
    tasks: list[tuple[int, ...]] = field(default_factory=list)
    discarded: int = 0
    seconds: float = 0.0

    def to_dataset(self, metadata: dict[str, Any], action_dtype: Any) -> EpisodeDataset:
        n_episodes = len(self.lengths)
        episode_tasks = np.full((n_episodes, max(len(task) for task in self.tasks)), -1, dtype=np.int64)
        for row, task in enumerate(self.tasks):
            episode_tasks[row, : len(task)] = task
        metadata = {
            **metadata,
            "counts": {"episodes": n_episodes, "steps": len(self.actions), "discarded_failures": self.discarded},
            "versions": _versions(),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "generation_seconds": round(self.seconds, 3),
        }
        dataset = EpisodeDataset(
            observations=np.concatenate(self.observations),
            actions=np.asarray(self.actions, dtype=action_dtype),
            subgoals=np.asarray(self.subgoals, dtype=np.int64),
            episode_lengths=np.asarray(self.lengths, dtype=np.int64),
            episode_success=np.asarray(self.successes, dtype=bool),
            episode_tasks=episode_tasks,
            metadata=metadata,
        )
        dataset.metadata["sha256"] = dataset.sha256
        return dataset


def _collect_episodes(run_episode: Any, n_episodes: int, only_success: bool, max_attempts: int, desc: str,
                      progress: bool, noise: str) -> _CollectedEpisodes:
    """Call ``run_episode(first)`` -> (observations, actions, subgoals, final info) until
    ``n_episodes`` are kept (all of them, or only successes); ``RuntimeError`` after ``max_attempts``."""
    collected = _CollectedEpisodes()
    attempts = 0
    started = time.perf_counter()
    with tqdm(total=n_episodes, desc=desc, unit="ep", disable=not progress) as bar:
        while len(collected.lengths) < n_episodes:
            if attempts >= max_attempts:
                if only_success:
                    raise RuntimeError(
                        f"only {len(collected.lengths)} of {n_episodes} successful episodes after "
                        f"max_attempts={max_attempts} attempts ({noise}); lower the noise, raise max_attempts "
                        "or keep failures (only_success=False)"
                    )
                raise RuntimeError(
                    f"only {len(collected.lengths)} of {n_episodes} episodes after max_attempts={max_attempts} "
                    f"attempts; every episode is kept (only_success=False), so max_attempts must be at least "
                    f"n_episodes={n_episodes}"
                )
            attempts += 1
            observations, actions, subgoals, info = run_episode(attempts == 1)
            success = bool(info["success"])
            if only_success and not success:
                collected.discarded += 1
                continue
            collected.observations.append(observations)
            collected.actions.extend(actions)
            collected.subgoals.extend(subgoals)
            collected.lengths.append(len(actions))
            collected.successes.append(success)
            collected.tasks.append(info["task"])
            bar.update(1)
    collected.seconds = time.perf_counter() - started
    return collected


def generate_grid_dataset(
    n_episodes: int,
    epsilon: float,
    seed: int,
    env_id: str = "HierGrid-Pretrain-v0",
    only_success: bool = True,
    progress: bool = True,
    max_attempts: int | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
) -> EpisodeDataset:
    """Roll out :class:`~hier_envs.experts.GridExpert` on one grid env (SPEC A§2.3, B3).

    ``env_kwargs`` go to ``gym.make`` (e.g. ``{"tasks": [...]}`` for expert data on tasks other
    than the id's own); the env's resulting configuration, tasks included, is in
    ``metadata["env_config"]``.

    Seeding: the env is reset with ``seed`` once and without a seed afterwards (so layouts and
    pretraining tasks come from one stream); the expert samples from
    ``np.random.default_rng([seed, 1])``. The same arguments give byte-identical arrays.

    With ``only_success`` (dataset D of the paper is "successful trajectories"), failed or
    truncated episodes are discarded and counted in ``metadata["counts"]["discarded_failures"]``;
    generation stops with ``RuntimeError`` after ``max_attempts`` episodes in all (a positive int,
    else ``ValueError``; default ``100·n_episodes + 1000``). ``progress`` shows a tqdm bar.
    """
    n_episodes, seed = _check_generation_args(n_episodes, seed, env_id, "HierGrid")
    max_attempts = _check_max_attempts(max_attempts, 100 * n_episodes + 1000)
    expert = GridExpert(epsilon)
    if env_kwargs is not None and not isinstance(env_kwargs, Mapping):
        raise TypeError(f"env_kwargs must be a mapping of gym.make keywords, got {env_kwargs!r}")
    env = gym.make(env_id, disable_env_checker=True, **dict(env_kwargs or {})).unwrapped
    if not isinstance(env, HierGridEnv):
        raise ValueError(f"{env_id!r} is not a grid env (got {type(env).__name__}); use a HierGrid id")
    rng = np.random.default_rng([seed, 1])
    obs_dim = int(env.observation_space.shape[0])
    obs_buffer = np.zeros((env.max_steps + 1, obs_dim), dtype=np.float32)

    def run_episode(first: bool) -> tuple[np.ndarray, list[int], list[int], dict[str, Any]]:
        obs, info = env.reset(seed=seed if first else None)
        obs_buffer[0] = obs
        episode_actions: list[int] = []
        episode_subgoals: list[int] = []
        while True:
            action = expert.act(env, rng)
            episode_subgoals.append(info["subgoal"])
            episode_actions.append(action)
            obs, _, terminated, truncated, info = env.step(action)
            obs_buffer[len(episode_actions)] = obs
            if terminated or truncated:
                break
        return np.packbits(obs_buffer[: len(episode_actions) + 1] != 0, axis=1), episode_actions, episode_subgoals, info

    collected = _collect_episodes(run_episode, n_episodes, only_success, max_attempts,
                                  f"{env_id} eps={expert.epsilon}", progress, f"epsilon={epsilon}")
    metadata: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": "grid",
        "env_id": env_id,
        "generator": {
            "expert": "GridExpert",
            "episodes": n_episodes,
            "epsilon": expert.epsilon,
            "seed": seed,
            "only_success": bool(only_success),
            "seeding": "env.reset(seed=seed) once, then env.reset(); expert rng np.random.default_rng([seed, 1])",
        },
        "env_config": {
            "grid_size": env.grid_size,
            "n_colors": env.n_colors,
            "n_walls": env.n_walls,
            "max_steps": env.max_steps,
            "tasks": [list(task) for task in env.tasks],
        },
        "obs_dim": obs_dim,
        "obs_encoding": "packbits",
        "action_space": {"type": "Discrete", "n": int(env.action_space.n)},
        "n_actions": int(env.action_space.n),
        "subgoal_labels": "grid abstract action next_color // 2 (A-D = 0-3) of the observation acted from",
    }
    return collected.to_dataset(metadata, action_dtype=np.int64)


def generate_ant_dataset(
    n_episodes: int,
    sample_actions: bool,
    seed: int,
    env_id: str = "HierAnt-Pretrain-v0",
    only_success: bool = True,
    progress: bool = True,
    max_attempts: int | None = None,
    weights: str | os.PathLike[str] | None = None,
) -> EpisodeDataset:
    """Roll out :class:`~hier_envs.experts.ant_expert.AntExpert` on one ant env (SPEC A§2.3, B3).

    ``sample_actions`` draws torques from the locomotion policy's Gaussian (dataset D); without
    it the expert acts with the mean (dataset D*). Observations are stored as float32 (41 per
    step), actions as float32 torques ``(N_steps, 8)``, subgoals as the next colour.
    Seeding, ``only_success`` and ``max_attempts`` work as in :func:`generate_grid_dataset`
    (default ``max_attempts`` here ``10·n_episodes + 100``: the ant expert is imperfect).
    ``weights`` overrides the shipped locomotion weights.
    """
    from hier_envs.ant import HierAntEnv
    from hier_envs.experts.ant_expert import AntExpert, run_ant_expert_episode
    from hier_envs.experts.ant_locomotion import WEIGHTS_PATH, LocomotionPolicy

    n_episodes, seed = _check_generation_args(n_episodes, seed, env_id, "HierAnt")
    if not isinstance(sample_actions, bool):
        raise TypeError(f"sample_actions must be a bool, got {sample_actions!r}")
    max_attempts = _check_max_attempts(max_attempts, 10 * n_episodes + 100)
    weights_path = Path(weights) if weights is not None else WEIGHTS_PATH
    policy = LocomotionPolicy.load(weights_path)
    expert = AntExpert(deterministic=not sample_actions, policy=policy)
    env = gym.make(env_id, disable_env_checker=True).unwrapped
    if not isinstance(env, HierAntEnv):
        raise ValueError(f"{env_id!r} is not an ant env (got {type(env).__name__}); use a HierAnt id")
    rng = np.random.default_rng([seed, 1])

    def run_episode(first: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        return run_ant_expert_episode(env, expert, rng, seed=seed if first else None)

    mode = "sampled" if sample_actions else "mean"
    collected = _collect_episodes(run_episode, n_episodes, only_success, max_attempts,
                                  f"{env_id} actions={mode}", progress, f"actions={mode}")
    env.close()
    metadata: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": "ant",
        "env_id": env_id,
        "generator": {
            "expert": "AntExpert",
            "episodes": n_episodes,
            "actions": mode,
            "seed": seed,
            "only_success": bool(only_success),
            "locomotion_weights": {"path": weights_path.name, "sha256": policy.meta.get("sha256")},
            "seeding": "env.reset(seed=seed) once, then env.reset(); expert rng np.random.default_rng([seed, 1])",
        },
        "env_config": {
            "grid_size": env.grid_size,
            "n_colors": env.n_colors,
            "n_walls": env.n_walls,
            "max_steps": env.max_steps,
            "cell_size": env.cell_size,
            "frame_skip": env.frame_skip,
            "tasks": [list(task) for task in env.tasks],
        },
        "obs_dim": int(env.observation_space.shape[0]),
        "obs_encoding": "float32",
        "action_space": {"type": "Box", "low": -1.0, "high": 1.0, "shape": [int(env.action_space.shape[0])]},
        "subgoal_labels": "ant abstract action = next colour (0-3) of the observation acted from",
    }
    return collected.to_dataset(metadata, action_dtype=np.float32)


# ------------------------------------------------------------------------------------- CLI
def _summary(dataset: EpisodeDataset, path: Path) -> str:
    counts = dataset.metadata.get("counts", {})
    mean_length = dataset.n_steps / max(dataset.n_episodes, 1)
    return "\n".join(
        [
            f"file        {path} ({path.stat().st_size / 1e6:.2f} MB)",
            f"env         {dataset.metadata.get('env_id')} (kind {dataset.metadata.get('kind')})",
            f"generator   {json.dumps(dataset.metadata.get('generator', {}), sort_keys=True)}",
            f"episodes    {dataset.n_episodes} (success {dataset.episode_success.mean():.3f}, "
            f"discarded failures {counts.get('discarded_failures', 0)})",
            f"steps       {dataset.n_steps} (mean length {mean_length:.2f})",
            f"sha256      {dataset.metadata.get('sha256')}",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hier_envs.datasets {grid,ant,info} …`` (SPEC B3); returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m hier_envs.datasets", description="hier-rl behaviour datasets (SPEC B3)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    grid = commands.add_parser("grid", help="generate a gridworld expert dataset")
    grid.add_argument("--episodes", type=int, required=True, help="episodes to keep")
    grid.add_argument("--epsilon", type=float, default=0.0, help="expert noise (0 gives D*; default 0)")
    grid.add_argument("--out", type=Path, required=True, help="output .npz path")
    grid.add_argument("--seed", type=int, default=0)
    grid.add_argument("--env-id", default="HierGrid-Pretrain-v0")
    ant = commands.add_parser("ant", help="generate an ant expert dataset")
    ant.add_argument("--episodes", type=int, required=True, help="episodes to keep")
    ant.add_argument("--sample", action="store_true", help="sample the expert's torques (dataset D); default: its mean (D*)")
    ant.add_argument("--out", type=Path, required=True, help="output .npz path")
    ant.add_argument("--seed", type=int, default=0)
    ant.add_argument("--env-id", default="HierAnt-Pretrain-v0")
    ant.add_argument("--weights", type=Path, default=None, help="locomotion weights (default: the shipped file)")
    for sub in (grid, ant):
        sub.add_argument("--keep-failures", action="store_true", help="keep failed/truncated episodes")
        sub.add_argument("--uncompressed", action="store_true", help="np.savez instead of np.savez_compressed")
        sub.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    info = commands.add_parser("info", help="verify a dataset file and print its metadata")
    info.add_argument("path", type=Path)
    args = parser.parse_args(argv)

    if args.command in ("grid", "ant"):
        started = time.perf_counter()
        if args.command == "grid":
            dataset = generate_grid_dataset(args.episodes, args.epsilon, args.seed, env_id=args.env_id,
                                            only_success=not args.keep_failures, progress=not args.no_progress)
        else:
            dataset = generate_ant_dataset(args.episodes, args.sample, args.seed, env_id=args.env_id,
                                           only_success=not args.keep_failures, progress=not args.no_progress,
                                           weights=args.weights)
        generated = time.perf_counter() - started
        save_dataset(dataset, args.out, compress=not args.uncompressed)
        print(_summary(dataset, args.out))
        print(
            f"time        {generated:.2f} s generating ({dataset.n_steps / generated:,.0f} steps/s), "
            f"{time.perf_counter() - started - generated:.2f} s writing"
        )
        return 0
    try:
        dataset = load_dataset(args.path)
    except (DatasetError, FileNotFoundError) as exc:
        print(f"error: {exc}")
        return 1
    print(_summary(dataset, args.path))
    print(json.dumps(dataset.metadata, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
