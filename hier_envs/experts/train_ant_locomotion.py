"""Train the ant expert's direction-conditioned locomotion policy with SB3 PPO (SPEC B3).

``python -m hier_envs.experts.train_ant_locomotion --run-dir runs/ant_locomotion`` trains PPO
(Stable-Baselines3, with ``VecNormalize``) on
:class:`~hier_envs.experts.ant_direction_env.AntDirectionEnv`, checkpoints every
``checkpoint_every`` steps (re-running the same command resumes from the last checkpoint) and
finally exports the policy as numpy arrays to ``--weights`` (default: the file shipped in the
package, :data:`~hier_envs.experts.ant_locomotion.WEIGHTS_PATH`), which the expert loads without
torch. The exported checkpoint is the one the expert scores best on the pretraining tasks
(``LocomotionTrainConfig.select_episodes``; scores in ``RUN_DIR/selection.json``).
``--export-only`` exports the same choice from the checkpoints so far without training.

Checkpoints are written atomically (SPEC B4; STYLE "checkpoints written in place"): each file of
a pair goes to a temporary name and is renamed into place, normaliser first, so a run killed
mid-write never leaves a truncated pair under a checkpoint name; resuming also skips, with a
warning, any pair that does not read back whole (e.g. one written in place by older code).

The paper trains one PPO agent across the tasks with a shortest-path direction in the
observation and a velocity-along-direction bonus (SPEC A§2.3); here the same two ingredients are
split: PPO learns only to walk along a commanded direction, and the planner picks it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pickle
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hier_envs.atomic_io import atomic_write, write_bytes_atomic, write_json_atomic
from hier_envs.experts.ant_locomotion import WEIGHTS_PATH, LocomotionPolicy, weights_sha256


@dataclass(frozen=True)
class LocomotionTrainConfig:
    """PPO settings (INFERRED; CleanRL/rl-zoo MuJoCo defaults with a wider ReLU network).

    ``default`` is the run whose weights ship with the package. Chosen from three 40-episode
    expert checks per checkpoint (``python -m hier_envs.experts.ant_expert``), all measured:
    - without the lateral term (1M steps, seed 0) the ant drifted across its commands and the
      expert reached 0.375 / 0.175 success (pretraining tasks / ``HierAnt-v0``);
    - ``lateral_cost_weight`` 1.0 (seed 0, 600k steps): 0.55 / 0.25, mostly time-outs (slow gait);
    - 0.5 (seed 1): 0.85 / 0.675 at 600k, 0.90 / 0.65 at 800k, then *worse* with more steps
      (0.725 / 0.45 at 1M, 0.65 / 0.525 at 1.2M, 0.20 / 0.10 at 1.4M, while the action std
      collapsed below 0.04 at a constant learning rate), so training stops at 800k.
    Training stops at exactly ``total_steps`` (see ``StopAtTotalSteps`` in :func:`train`), so
    that run's last checkpoint is its 800k one, the shipped file: two runs' 800k checkpoints had
    the same sha256 on the machine that trained it. It was the best of the checkpoints checked
    then (600k onwards) on the pretraining tasks, the rule ``select_episodes`` now applies to
    every checkpoint; its 200k and 400k checkpoints were not checked. On a fresh evaluation
    stream (seed 1, 200 episodes) the shipped expert scores 0.855 / 0.610. On another CPU the same
    command gives other weights (float rounding of other kernels, amplified by PPO): a rerun's
    last checkpoint scored 0.370 / 0.200, its best (400k) 0.71 / 0.50 over 100 episodes
    (``results/ant_locomotion_rerun``). The shipped file, not a retraining, is the expert every
    dataset uses.
    """

    total_steps: int = 800_000
    n_envs: int = 8
    n_steps: int = 256
    batch_size: int = 128
    n_epochs: int = 10
    learning_rate: float = 3e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    log_std_init: float = -1.0
    hidden: tuple[int, ...] = (256, 256)
    checkpoint_every: int = 200_000
    seed: int = 1
    lateral_cost_weight: float = 0.5
    """Weight of the speed across the commanded direction in the training reward (AntDirectionEnv)."""
    select_episodes: int = 40
    """After training, every checkpoint drives the expert for this many episodes of
    ``HierAnt-Pretrain-v0`` (the pretraining tasks, never ``HierAnt-v0``; evaluation seed
    ``select_seed``) and the best one is exported (ties: the later one); 0 exports the last
    checkpoint. Why: the policy's quality swings between checkpoints and falls after its peak
    at a constant learning rate, and where the peak lies depends on the machine (a rerun on
    another CPU peaked at 400k, ``results/ant_locomotion_rerun``). This is SB3's "keep the best
    model" practice (``EvalCallback``), scored on the task the expert serves, and the rule by
    which the shipped checkpoint was picked by hand (40-episode checks, seed 0)."""
    select_seed: int = 0

    def __post_init__(self) -> None:
        for name in ("select_episodes", "select_seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"LocomotionTrainConfig.{name} must be an int >= 0, got {value!r}")


PRESETS = {
    "smoke": dataclasses.replace(LocomotionTrainConfig(), total_steps=1000, n_envs=2, n_steps=256,
                                 batch_size=256, n_epochs=1, checkpoint_every=500, hidden=(32, 32),
                                 select_episodes=0),
    "default": LocomotionTrainConfig(),
}


def _make_vec_env(config: LocomotionTrainConfig):
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv

    from hier_envs.experts.ant_direction_env import AntDirectionEnv

    return make_vec_env(AntDirectionEnv, n_envs=config.n_envs, seed=config.seed, vec_env_cls=DummyVecEnv,
                        env_kwargs={"lateral_cost_weight": config.lateral_cost_weight})


def train(config: LocomotionTrainConfig, run_dir: Path, weights_path: Path, progress: bool = True) -> Path:
    """Train (or resume) in ``run_dir`` and export the policy to ``weights_path``.

    A resumed run continues from the last checkpoint with fresh env states and a fresh rollout
    (SB3 saves neither), so it is close to, not bit-identical with, an uninterrupted run; an
    uninterrupted run is deterministic on one machine (same seed, same weights, checked for the
    shipped file), not across CPUs (``results/ant_locomotion_rerun``).
    """
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback, CallbackList
    from stable_baselines3.common.vec_env import VecNormalize

    class StopAtTotalSteps(BaseCallback):
        """Stop at exactly ``total_steps`` env steps, even inside a rollout.

        SB3's ``learn`` only stops after a whole rollout (n_envs · n_steps = 2,048 steps) and then
        updates once more. Stopping inside the rollout instead leaves the policy as it was after
        the last full update, with the observation normaliser as of ``total_steps``: exactly the
        state the checkpoint callback saves at that step, so a checkpoint picked mid-run is what
        a fresh run with that ``total_steps`` ends with.
        """

        def _on_step(self) -> bool:
            return self.num_timesteps < config.total_steps

    class AtomicCheckpoints(BaseCallback):
        """SB3's ``CheckpointCallback`` schedule and file names (every ``save_every`` calls of
        ``n_envs`` steps), each pair written atomically by :func:`_save_checkpoint`."""

        def _on_step(self) -> bool:
            if self.n_calls % save_every == 0:
                _save_checkpoint(self.model, self.model.get_vec_normalize_env(), checkpoint_dir, self.num_timesteps)
            return True

    torch.set_num_threads(1)
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / "config.json"
    config_dict = json.loads(json.dumps(dataclasses.asdict(config)))  # tuples as lists, as stored
    if config_path.exists() and _training_fields(json.loads(config_path.read_text())) != _training_fields(config_dict):
        raise ValueError(f"{run_dir} holds a run with another config ({config_path}); use a new --run-dir")
    write_json_atomic(config_path, config_dict)
    latest = _latest_checkpoint(run_dir)
    venv = _make_vec_env(config)
    if latest is None:
        venv = VecNormalize(venv, gamma=config.gamma, clip_obs=10.0)
        model = PPO(
            "MlpPolicy", venv, n_steps=config.n_steps, batch_size=config.batch_size, n_epochs=config.n_epochs,
            learning_rate=config.learning_rate, gamma=config.gamma, gae_lambda=config.gae_lambda,
            clip_range=config.clip_range, seed=config.seed, verbose=0, device="cpu",
            policy_kwargs={"net_arch": dict(pi=list(config.hidden), vf=list(config.hidden)),
                           "activation_fn": torch.nn.ReLU, "log_std_init": config.log_std_init},
        )
    else:
        model, venv = _load_checkpoint(latest, venv)
    # One SB3 CSV log per (re)start: log_from_<first step>/progress.csv (episode return, fps, losses).
    from stable_baselines3.common.logger import configure

    log_dir = run_dir / f"log_from_{model.num_timesteps}"
    model.set_logger(configure(str(log_dir), ["csv"]))
    remaining = config.total_steps - model.num_timesteps
    start = time.time()
    if remaining > 0:
        checkpoint_dir = run_dir / "checkpoints"
        save_every = max(config.checkpoint_every // config.n_envs, 1)
        callback = CallbackList([AtomicCheckpoints(), StopAtTotalSteps()])
        model.learn(remaining, callback=callback, reset_num_timesteps=False, progress_bar=progress)
        _save_checkpoint(model, venv, checkpoint_dir, model.num_timesteps)
    extra = {"train_seconds_this_run": round(time.time() - start, 1)}
    if config.select_episodes:
        venv.close()
        return export_selected(config, run_dir, weights_path, extra)
    export_policy(model, venv, weights_path, config, extra=extra)
    return weights_path


def select_checkpoint(config: LocomotionTrainConfig, run_dir: Path) -> tuple[tuple[Path, Path], list[dict]]:
    """Score every readable checkpoint of ``run_dir`` with the expert on ``HierAnt-Pretrain-v0``
    (``config.select_episodes`` episodes, seed ``config.select_seed``; each exported to
    ``run_dir/selection/``) and return the best pair and the scores, also written to
    ``run_dir/selection.json`` (see ``LocomotionTrainConfig.select_episodes``). Equal scores go to
    the later checkpoint: 40 episodes cannot separate them, and it has trained longer."""
    from hier_envs.experts import ant_expert

    scored = []
    for steps, model_path, normaliser in _readable_checkpoints(run_dir):
        model, venv = _load_checkpoint((model_path, normaliser), _make_vec_env(config))
        weights = run_dir / "selection" / f"ant_locomotion_{steps}.npz"
        export_policy(model, venv, weights, config)
        venv.close()
        result = ant_expert.evaluate_ant_expert("HierAnt-Pretrain-v0", config.select_episodes, config.select_seed,
                                                policy=LocomotionPolicy.load(weights))
        scored.append(({"steps": steps, "success_rate": result["success_rate"], "outcomes": result["outcomes"]},
                       (model_path, normaliser)))
    if not scored:
        raise FileNotFoundError(f"no readable checkpoint in {run_dir / 'checkpoints'} to select from")
    best = max(range(len(scored)), key=lambda i: (scored[i][0]["success_rate"], scored[i][0]["steps"]))
    records = [{**record, "selected": i == best} for i, (record, _) in enumerate(scored)]
    write_json_atomic(run_dir / "selection.json", {"env_id": "HierAnt-Pretrain-v0", "episodes": config.select_episodes,
                                                   "seed": config.select_seed, "checkpoints": records})
    return scored[best][1], records


SELECTION_FIELDS = ("select_episodes", "select_seed")
"""Config fields that choose which checkpoint is exported, not how training runs: a run folder
accepts other values for them (and folders made before they existed)."""


def _training_fields(config_dict: dict) -> dict:
    return {key: value for key, value in config_dict.items() if key not in SELECTION_FIELDS}


def export_selected(config: LocomotionTrainConfig, run_dir: Path, weights_path: Path,
                    extra: dict | None = None) -> Path:
    """Export what :func:`train` exports from ``run_dir``'s checkpoints (``--export-only``, and
    :func:`train` itself once trained): the checkpoint :func:`select_checkpoint` picks, with its
    scores and ``extra`` in the metadata, or the latest with ``select_episodes`` 0."""
    if not config.select_episodes:
        return export_latest(config, run_dir, weights_path)
    selected, selection = select_checkpoint(config, run_dir)
    model, venv = _load_checkpoint(selected, _make_vec_env(config))
    export_policy(model, venv, weights_path, config, extra={**(extra or {}), "selection": selection})
    return weights_path


def export_latest(config: LocomotionTrainConfig, run_dir: Path, weights_path: Path) -> Path:
    """Export the latest checkpoint of ``run_dir`` (e.g. while training still runs)."""
    latest = _latest_checkpoint(run_dir)
    if latest is None:
        raise FileNotFoundError(f"no checkpoint in {run_dir / 'checkpoints'}")
    model, venv = _load_checkpoint(latest, _make_vec_env(config))
    export_policy(model, venv, weights_path, config)
    return weights_path


def _save_checkpoint(model, normaliser, checkpoint_dir: Path, steps: int) -> tuple[Path, Path]:
    """Write the checkpoint pair for ``steps`` atomically (SPEC B4): the bytes SB3's
    ``CheckpointCallback`` writes (``model.save`` and ``VecNormalize.save``, a plain pickle),
    under the same names, each through a temporary file renamed into place
    (:func:`~hier_envs.atomic_io.atomic_write`). The normaliser goes first, so the model zip that
    :func:`_latest_checkpoint` looks for only appears once its pair is complete."""
    model_path = checkpoint_dir / f"ppo_{steps}_steps.zip"
    normaliser_path = checkpoint_dir / f"ppo_vecnormalize_{steps}_steps.pkl"
    with atomic_write(normaliser_path) as handle:
        pickle.dump(normaliser, handle)
    with atomic_write(model_path) as handle:
        model.save(handle)  # SB3 writes its zip into an open binary file and leaves it open
    return model_path, normaliser_path


def _latest_checkpoint(run_dir: Path) -> tuple[Path, Path] | None:
    """(model zip, observation-normaliser pickle) of the newest checkpoint that reads back whole,
    or None. Newest first, so a resume reads only as far back as it must and falls back to the
    previous checkpoint instead of failing (:func:`_reads_back`)."""
    for _, model_path, normaliser in reversed(_checkpoint_pairs(run_dir)):
        if _reads_back(model_path, normaliser):
            return model_path, normaliser
    return None


def _readable_checkpoints(run_dir: Path) -> list[tuple[int, Path, Path]]:
    """``(steps, model zip, normaliser pickle)`` of every checkpoint pair that reads back whole
    (:func:`_reads_back`), oldest first."""
    return [pair for pair in _checkpoint_pairs(run_dir) if _reads_back(pair[1], pair[2])]


def _checkpoint_pairs(run_dir: Path) -> list[tuple[int, Path, Path]]:
    """``(steps, model zip, normaliser pickle)`` of every checkpoint whose pickle exists, oldest first."""
    found = []
    for path in (run_dir / "checkpoints").glob("ppo_*_steps.zip"):
        steps = int(path.stem.split("_")[1])
        normaliser = run_dir / "checkpoints" / f"ppo_vecnormalize_{steps}_steps.pkl"
        if normaliser.is_file():
            found.append((steps, path, normaliser))
    return sorted(found)


def _reads_back(model_path: Path, normaliser: Path) -> bool:
    """Whether a pair is usable: the zip passes its CRC check and the pickle loads. A truncated or
    corrupt pair (a kill while an older version wrote in place) is skipped with a warning."""
    problem = _unreadable_checkpoint(model_path, normaliser)
    if problem is not None:
        warnings.warn(f"skipping unreadable checkpoint {model_path.name} / {normaliser.name}: {problem}", stacklevel=3)
    return problem is None


def _unreadable_checkpoint(model_path: Path, normaliser: Path) -> str | None:
    """Why a checkpoint pair cannot be read back, or ``None`` if its zip and pickle are whole."""
    try:
        with zipfile.ZipFile(model_path) as archive:
            corrupt_member = archive.testzip()
        if corrupt_member is not None:
            return f"member {corrupt_member!r} of {model_path.name} fails its CRC check"
        with normaliser.open("rb") as handle:
            pickle.load(handle)
    except Exception as exc:  # any failure to read means the pair is unusable: skip it
        return f"{type(exc).__name__}: {exc}"
    return None


def _load_checkpoint(latest: tuple[Path, Path], venv):
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize

    model_path, normaliser = latest
    venv = VecNormalize.load(str(normaliser), venv)
    return PPO.load(str(model_path), env=venv, device="cpu"), venv


def export_policy(model, venv, weights_path: Path, config: LocomotionTrainConfig, extra: dict | None = None) -> None:
    """Write the actor (mean MLP, log-std) and the observation normaliser as a checksummed npz."""
    import io

    def numpy(tensor) -> np.ndarray:
        return tensor.detach().numpy().astype(np.float32)

    policy = model.policy
    arrays = {"obs_mean": venv.obs_rms.mean.astype(np.float32), "obs_var": venv.obs_rms.var.astype(np.float32)}
    hidden = [layer for layer in policy.mlp_extractor.policy_net if hasattr(layer, "weight")]
    for i, layer in enumerate(hidden):
        arrays[f"w{i}"], arrays[f"b{i}"] = numpy(layer.weight).T, numpy(layer.bias)
    arrays["w_out"], arrays["b_out"] = numpy(policy.action_net.weight).T, numpy(policy.action_net.bias)
    arrays["log_std"] = numpy(policy.log_std)
    meta = {"config": dataclasses.asdict(config), "num_timesteps": int(model.num_timesteps),
            "sha256": weights_sha256(arrays), **(extra or {})}
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(json.dumps(meta)), **arrays)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(weights_path, buffer.getvalue())
    LocomotionPolicy.load(weights_path)  # round-trip check


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default")
    parser.add_argument("--run-dir", type=Path, default=Path("runs/ant_locomotion"))
    parser.add_argument("--weights", type=Path, default=WEIGHTS_PATH)
    parser.add_argument("--total-steps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--lateral-cost-weight", type=float, default=None)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--select-episodes", type=int, default=None,
                        help="expert episodes scoring each checkpoint (0: export the last checkpoint)")
    parser.add_argument("--export-only", action="store_true",
                        help="export without training (the selected checkpoint, or the latest with --select-episodes 0)")
    args = parser.parse_args(argv)
    config = PRESETS[args.preset]
    overrides = {k: v for k, v in (("total_steps", args.total_steps), ("seed", args.seed),
                                   ("lateral_cost_weight", args.lateral_cost_weight),
                                   ("select_episodes", args.select_episodes)) if v is not None}
    config = dataclasses.replace(config, **overrides)
    if args.export_only:
        path = export_selected(config, args.run_dir, args.weights)
    else:
        path = train(config, args.run_dir, args.weights, progress=not args.no_progress)
    print(f"locomotion policy written to {path}")


if __name__ == "__main__":
    main()
