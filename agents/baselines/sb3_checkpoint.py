"""Whole-run checkpoints for the Stable-Baselines3 baselines, so a stopped run resumes (SPEC B4).

SB3's ``model.save`` keeps the parameters, the optimiser state and the counters
(``num_timesteps``, DQN's ``_n_calls`` and exploration rate, the last observation), but not
everything a run needs to continue where it stopped:

- the training envs in the middle of their episodes (layouts, positions, their own RNGs);
- the global torch / numpy / Python RNGs (policy sampling, DQN's ε-greedy draws);
- the action space's RNG, which DQN and SAC sample their warm-up actions from (``load`` reseeds it);
- RecurrentPPO's LSTM states, which sb3-contrib excludes from its save;
- the replay buffer of DQN and SAC (SB3 saves it separately, ``save_replay_buffer``).

:func:`save_sb3_checkpoint` writes all of them with the caller's own run state (episode count,
curve so far, clocks) into **one** zip archive, written atomically, so an interrupted save
leaves the previous checkpoint intact. Members: ``state.json`` (the run state), ``model.zip``
(``model.save``), ``envs.pkl`` (the ``DummyVecEnv`` of training envs, cloudpickled), ``rng.pkl``
and, for off-policy algorithms, ``replay_buffer.pkl``.

The caller saves at the start of a rollout (``BaseCallback.on_rollout_start``): the previous
gradient update is done and no transition of the next rollout has been collected, so after
:func:`load_sb3_checkpoint`, ``model.learn(remaining, reset_num_timesteps=False)`` does exactly
what the uninterrupted run did next (tested for every baseline: same curve, same weights).

Cost (``benchmarks/sb3_checkpoint_cost.py`` → ``results/sb3_checkpoint_cost.json``, this 2-core
machine, default hyperparameters): the grid DQN checkpoint is 534 MB, 528 MB of it the
100,000-transition replay buffer, and takes 1–2.5 s to write and about 1 s to load; RecurrentPPO's
is 12.6 MB and takes under 0.1 s. Hence the default interval of 10 minutes in
:func:`agents.baselines.sb3_agents.train_sb3_baseline`.

Loading unpickles envs and buffers, as SB3's own ``load`` does: only load checkpoints this
code wrote. A truncated or corrupt archive, a missing member, or a run state written for
another configuration raises :class:`agents.checkpoints.CheckpointError` naming the file.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cloudpickle
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from agents.checkpoints import CheckpointError, capture_rng_state, restore_rng_state
from agents.training_utils import check_same_config
from hier_envs.atomic_io import atomic_write

__all__ = ["SB3_CHECKPOINT_VERSION", "load_sb3_checkpoint", "save_sb3_checkpoint"]

SB3_CHECKPOINT_VERSION = 1
"""Bumped whenever the archive layout changes; older archives are then refused."""

_MEMBERS = ("state.json", "model.zip", "envs.pkl", "rng.pkl")


def save_sb3_checkpoint(path: str | os.PathLike[str], model: BaseAlgorithm, run_state: Mapping[str, Any]) -> Path:
    """Write ``model``, its training envs (``model.get_env()``), the RNGs and ``run_state`` to
    ``path`` atomically.

    ``run_state`` must be JSON-serialisable and hold a ``"config"`` entry identifying the run
    (checked again on load). Call it between rollouts (module docstring); it draws no random
    numbers, so saving does not change the run.
    """
    if "config" not in run_state:
        raise ValueError("run_state needs a 'config' entry identifying the run")
    state_json = json.dumps({"version": SB3_CHECKPOINT_VERSION, **run_state})
    model_bytes = io.BytesIO()
    model.save(model_bytes)
    rng = {
        "global": capture_rng_state(),
        "action_space": model.action_space.np_random.bit_generator.state,
        "lstm_states": getattr(model, "_last_lstm_states", None),  # RecurrentPPO leaves it out of save
    }
    path = Path(path)
    with atomic_write(path) as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("state.json", state_json)
        archive.writestr("model.zip", model_bytes.getvalue())
        archive.writestr("envs.pkl", cloudpickle.dumps(model.get_env()))
        archive.writestr("rng.pkl", pickle.dumps(rng))
        if isinstance(model, OffPolicyAlgorithm):
            buffer_bytes = io.BytesIO()
            model.save_replay_buffer(buffer_bytes)
            archive.writestr("replay_buffer.pkl", buffer_bytes.getvalue())
    return path


def load_sb3_checkpoint(path: str | os.PathLike[str], algorithm_class: type[BaseAlgorithm],
                        expected_config: Mapping[str, Any]) -> tuple[BaseAlgorithm, VecEnv, dict[str, Any]]:
    """Restore ``(model, train_envs, run_state)`` from :func:`save_sb3_checkpoint`'s archive.

    ``expected_config`` must equal the stored ``run_state["config"]``
    (:func:`agents.training_utils.check_same_config`), else :class:`CheckpointError`: a run
    directory is not reused for another run. The global RNGs
    are restored last, after SB3's ``load`` has reseeded them.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            bad_member = archive.testzip()
            if bad_member is not None:
                raise CheckpointError(f"{path}: corrupt SB3 checkpoint (bad CRC in {bad_member})")
            names = set(archive.namelist())
            missing = [name for name in _MEMBERS if name not in names]
            if missing:
                raise CheckpointError(f"{path}: SB3 checkpoint lacks {missing}")
            state = json.loads(archive.read("state.json"))
            model_bytes = archive.read("model.zip")
            envs_bytes = archive.read("envs.pkl")
            rng = pickle.loads(archive.read("rng.pkl"))
            buffer_bytes = archive.read("replay_buffer.pkl") if "replay_buffer.pkl" in names else None
    except CheckpointError:
        raise
    except (OSError, zipfile.BadZipFile, EOFError, ValueError, pickle.UnpicklingError) as error:
        raise CheckpointError(f"{path}: unreadable SB3 checkpoint ({type(error).__name__}: {error})") from error
    if state.get("version") != SB3_CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: SB3 checkpoint version {state.get('version')!r}, expected {SB3_CHECKPOINT_VERSION}")
    check_same_config(path, state, expected_config, "SB3 run configuration")
    train_envs = pickle.loads(envs_bytes)
    # force_reset=False keeps the saved last observation, so learn() continues the envs' episodes
    model = algorithm_class.load(io.BytesIO(model_bytes), env=train_envs, device="cpu", force_reset=False)
    if issubclass(algorithm_class, OffPolicyAlgorithm):
        if buffer_bytes is None:
            raise CheckpointError(f"{path}: SB3 checkpoint of an off-policy run lacks replay_buffer.pkl")
        model.load_replay_buffer(io.BytesIO(buffer_bytes))
    if rng["lstm_states"] is not None:
        model._last_lstm_states = rng["lstm_states"]  # noqa: SLF001 (sb3-contrib keeps it private)
    model.action_space.np_random.bit_generator.state = rng["action_space"]
    restore_rng_state(rng["global"])
    state.pop("version")
    return model, train_envs, state
