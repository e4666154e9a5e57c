"""The main benchmark job: every method × seed on one or more envs, then the report (SPEC B5, B6).

    python benchmarks/run_all.py                         # default preset, grid, every method
    python benchmarks/run_all.py --env ant               # the ant's methods (METHOD_ENVS)
    python benchmarks/run_all.py --preset smoke --out results/smoke
    python benchmarks/run_all.py --methods sb3_ppo_privileged,sb3_dqn_privileged --seeds 0,1,2 --workers 2
    python benchmarks/run_all.py --executor ray --ray-address auto          # needs `pip install ray`

**Results folder** (``--out``, default ``results/<preset>``): ``runs/<env>__<method>__seed<seed>.json``
(one per *finished* run, schema in :mod:`benchmarks.reporting`), ``work/<env>/<method>/seed<seed>/``
(method outputs: models, curves, logs), ``summary.csv``, ``summary.md``, learning-curve PNGs and
``manifest.json`` (command, preset, versions, git commit, wall time).

**Resume.** A run's JSON is written atomically only after the run has finished, and a run whose
JSON already exists is skipped, so re-running the same command after an interruption finishes
only the missing runs (a run interrupted midway restarts; methods may resume internally from
their own checkpoints in their work folder). Each JSON records its preset's name and
``preset_fingerprint`` (a sha256 of the env's budgets, trainer presets and SB3 hyperparameters):
a JSON of another preset, or of this preset before one of those changed, is refused with an error
naming it rather than skipped into the table.

**Several invocations on one results folder.** When an invocation lists a run it takes that run's
lock (``work/<env>/<method>/seed<seed>/run.lock``, ``fcntl.flock`` without waiting) and holds it
until the run's JSON is written or the run has failed. A run whose lock another process holds is
not run here: it is reported as *busy* (``summary["busy"]``) and left to that process, so two
invocations never run, nor rewrite the JSON of, the same run. (Locks need a local or otherwise
flock-capable file system; a killed process releases its locks.) A killed invocation takes its
``local`` workers with it: each worker ends itself within a second of its parent's death, so no
orphan trains on. The worker also holds ``worker.lock`` in the run's work folder while the
method runs, and waits for it first, so even a worker that outlives its invocation never runs
beside the next one's.

**Methods.** :data:`METHOD_REGISTRY` maps a method name to a callable
``method(env: str, seed: int, preset: BenchmarkPreset, out_dir: Path) -> dict`` that trains and
evaluates one run and returns the run record (``privileged``, ``curve``, ``final_success_rate``,
``wall_s``, ``config``; ``method``, ``env`` and ``seed`` are filled in by the loop).
``env`` is a short name from :data:`ENV_IDS`, ``out_dir`` the run's work folder; the method
receives the preset with that env's ``env_overrides`` applied. :data:`METHOD_ENVS` says which
envs a method runs on: without ``--methods`` every method of the env runs; naming a method on an
env it does not support is an error. Runs execute
in worker processes (spawned), so a method must be a top-level function of an importable
module; add it with :func:`register_method` (or an entry in the dict) — the loop is unchanged.

**Executors.** ``local``: a ``ProcessPoolExecutor`` with ``--workers`` processes (default 1;
this machine has 2 cores). ``ray``: each run is one Ray task (``num_cpus=1``) on a local Ray
instance or on the cluster at ``--ray-address``; results return to this process, which writes the
JSONs, so the results folder lives here while work folders are on the workers' file system
(a shared file system keeps models beside the results). Ray is optional: ``pip install ray``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/run_all.py`: make `import benchmarks` work
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dataclasses
import fcntl
import hashlib
import json
import multiprocessing
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import IO, Any, Literal

from benchmarks import pipeline_methods
from benchmarks.reporting import (
    DEFAULT_REFERENCE_METHOD,
    RUN_SCHEMA_VERSION,
    load_runs,
    run_filename,
    validate_run_record,
    write_json_atomic,
    write_manifest,
    write_report,
)

__all__ = [
    "ENV_IDS",
    "METHOD_ENVS",
    "METHOD_REGISTRY",
    "PRESETS",
    "BenchmarkPreset",
    "RunAllConfig",
    "main",
    "parse_seeds",
    "register_method",
    "run_benchmark",
]

ENV_IDS: dict[str, str] = {"grid": "HierGrid-v0", "ant": "HierAnt-v0"}
"""Short env names accepted by ``--env`` and passed to methods -> registered post-training ids (SPEC B2)."""


# ------------------------------------------------------------------------ presets
@dataclass(frozen=True)
class BenchmarkPreset:
    """Budgets and evaluation schedule shared by every method (SPEC B5).

    Every method trains for ``train_episodes`` episodes, so methods compare "at the same episode
    budget" (SPEC A§7.2). Method-specific knobs go in ``sb3_overrides`` / ``method_options``.
    """

    name: str
    """``smoke``, ``default`` or ``paper`` (or a test's own name)."""
    train_episodes: int
    """Training-episode budget of every run (SPEC A§7.2 plots success vs RL episodes)."""
    eval_every_episodes: int
    """Evaluate the current policy after every this many training episodes (and before training)."""
    eval_episodes: int
    """Episodes per evaluation point."""
    seeds: tuple[int, ...]
    """Seeds run when ``--seeds`` is not given."""
    sb3_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Per SB3 algo (``recurrent_ppo``, ``ppo``, ``dqn``) hyperparameters replacing
    ``agents.baselines.sb3_agents.HYPERPARAMS`` entries (e.g. shorter rollouts for smoke)."""
    method_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Free-form per-method options for methods registered later (keyed by method name)."""
    env_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Per short env name, fields of this preset replaced for that env's runs (an ant episode
    costs ~10× a grid episode on CPU, so the ant trains on fewer episodes)."""

    def for_env(self, env: str) -> BenchmarkPreset:
        """This preset with ``env_overrides[env]`` applied."""
        overrides = dict(self.env_overrides.get(env, {}))
        if "env_overrides" in overrides:
            raise ValueError("env_overrides cannot override env_overrides")
        return dataclasses.replace(self, **overrides) if overrides else self

    def __post_init__(self) -> None:
        for name in ("train_episodes", "eval_every_episodes", "eval_episodes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not self.seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in self.seeds):
            raise ValueError(f"seeds must be a non-empty tuple of non-negative ints, got {self.seeds!r}")


PRESETS: dict[str, BenchmarkPreset] = {
    # Wiring only (SPEC B5): a few hundred episodes, one seed; the SB3 methods take well under
    # a minute together. Shorter PPO rollouts so that several updates happen at all.
    "smoke": BenchmarkPreset(
        name="smoke",
        train_episodes=300,
        eval_every_episodes=100,
        eval_episodes=20,
        seeds=(0,),
        sb3_overrides={"recurrent_ppo": {"n_steps": 32}, "ppo": {"n_steps": 32}, "dqn": {"learning_starts": 200}},
        env_overrides={"ant": {"train_episodes": 8, "eval_every_episodes": 4, "eval_episodes": 2, "sb3_overrides": {
            "ppo": {"n_steps": 32, "batch_size": 64}, "ppo_raw": {"n_steps": 32, "batch_size": 64},
            "sac": {"learning_starts": 100}, "sac_privileged": {"learning_starts": 100}}}},
    ),
    # CPU-sized (SPEC B5): 20k training episodes (the paper's curves start resolving internal RL
    # within ~1e4–1e5 episodes), 3 seeds, 20 evaluation points of 100 episodes.
    "default": BenchmarkPreset(
        name="default",
        train_episodes=20_000,
        eval_every_episodes=1_000,
        eval_episodes=100,
        seeds=(0, 1, 2),
        # The ant: 4,096 training episodes (the ant internal-RL default), 5 seeds (issue #7's
        # acceptance), 16 evaluation points of 50 episodes.
        env_overrides={"ant": {"train_episodes": 4096, "eval_every_episodes": 256, "eval_episodes": 50,
                               "seeds": (0, 1, 2, 3, 4)}},
    ),
    # The paper's scale (SPEC A§7.2, §8 "Seeds"): 1e6 episodes and 30 runs, for a GPU machine.
    "paper": BenchmarkPreset(
        name="paper",
        train_episodes=1_000_000,
        eval_every_episodes=10_000,
        eval_episodes=256,
        seeds=tuple(range(30)),
    ),
}
"""Named presets (SPEC B5)."""


# ------------------------------------------------------------------------ methods
MethodFn = Callable[[str, int, BenchmarkPreset, Path], dict[str, Any]]
"""``method(env, seed, preset, out_dir) -> run record`` (module docstring, "Methods")."""


def _sb3_run(algo: str, env: str, seed: int, preset: BenchmarkPreset, out_dir: Path) -> dict[str, Any]:
    """One SB3 baseline run as a run record (SPEC B2 last bullet, B6)."""
    from agents.baselines.sb3_agents import train_sb3_baseline

    result = train_sb3_baseline(
        algo,
        ENV_IDS[env],
        total_episodes=preset.train_episodes,
        total_timesteps=None,
        seed=seed,
        eval_every_episodes=preset.eval_every_episodes,
        eval_episodes=preset.eval_episodes,
        out_dir=out_dir,
        progress=False,
        hyperparam_overrides=preset.sb3_overrides.get(algo),
    )
    config = {k: v for k, v in result.items() if k not in ("curve", "final_success_rate", "wall_s", "privileged")}
    return {
        "privileged": result["privileged"],
        "curve": result["curve"],
        "final_success_rate": result["final_success_rate"],
        "wall_s": result["wall_s"],
        "config": config,
    }


def run_sb3_recurrent_ppo(env: str, seed: int, preset: BenchmarkPreset, out_dir: Path) -> dict[str, Any]:
    """sb3-contrib RecurrentPPO (MlpLstmPolicy) on the raw observation — faithful."""
    return _sb3_run("recurrent_ppo", env, seed, preset, out_dir)


def run_sb3_ppo_privileged(env: str, seed: int, preset: BenchmarkPreset, out_dir: Path) -> dict[str, Any]:
    """SB3 PPO (MlpPolicy) on PrivilegedProgressWrapper — privileged."""
    return _sb3_run("ppo", env, seed, preset, out_dir)


def run_sb3_dqn_privileged(env: str, seed: int, preset: BenchmarkPreset, out_dir: Path) -> dict[str, Any]:
    """SB3 DQN (MlpPolicy) on PrivilegedProgressWrapper — privileged."""
    return _sb3_run("dqn", env, seed, preset, out_dir)


def run_sb3_ppo_raw(env: str, seed: int, preset: BenchmarkPreset, out_dir: Path) -> dict[str, Any]:
    """SB3 PPO (MlpPolicy) on the raw observation — raw (memoryless, ant)."""
    return _sb3_run("ppo_raw", env, seed, preset, out_dir)


def run_sb3_sac(env: str, seed: int, preset: BenchmarkPreset, out_dir: Path) -> dict[str, Any]:
    """SB3 SAC (MlpPolicy) on the raw observation — raw (memoryless, ant)."""
    return _sb3_run("sac", env, seed, preset, out_dir)


def run_sb3_sac_privileged(env: str, seed: int, preset: BenchmarkPreset, out_dir: Path) -> dict[str, Any]:
    """SB3 SAC (MlpPolicy) on PrivilegedProgressWrapper — privileged (ant)."""
    return _sb3_run("sac_privileged", env, seed, preset, out_dir)


def run_expert(env: str, seed: int, preset: BenchmarkPreset, out_dir: Path) -> dict[str, Any]:
    """The env's expert (the data generator, privileged: it plans with the task) on the post-training
    task, ``4 × eval_episodes`` episodes, no training. Its success normalises the others' (the
    paper divides ant success by its expert's, SPEC A§2.3)."""
    import time as _time

    from hier_envs.tasks import GRID_POSTTRAIN_TASK

    episodes = 4 * preset.eval_episodes
    tic = _time.perf_counter()
    if env == "ant":
        from hier_envs.experts.ant_expert import evaluate_ant_expert

        report = evaluate_ant_expert(ENV_IDS[env], episodes, seed)
    else:
        from hier_envs.experts.grid_expert import evaluate_grid_expert

        report = evaluate_grid_expert(GRID_POSTTRAIN_TASK, episodes, seed)
    wall_s = _time.perf_counter() - tic
    point = {"episodes": 0, "env_steps": int(round(report["mean_length"] * episodes)),
             "success_rate": report["success_rate"], "wall_s": wall_s}
    config = {"eval_episodes": episodes, **{k: v for k, v in report.items() if isinstance(v, (int, float, str))}}
    return {"privileged": True, "curve": [point], "final_success_rate": report["success_rate"], "wall_s": wall_s,
            "config": config}


METHOD_REGISTRY: dict[str, MethodFn] = {
    "expert": run_expert,
    "internal_rl": pipeline_methods.run_internal_rl,
    "raw_action_rl": pipeline_methods.run_raw_action_rl,
    "compile_rl": pipeline_methods.run_compile_rl,
    "internal_rl_beta1": pipeline_methods.run_internal_rl_beta1,
    "internal_rl_cotrained": pipeline_methods.run_internal_rl_cotrained,
    "sb3_recurrent_ppo": run_sb3_recurrent_ppo,
    "sb3_ppo_privileged": run_sb3_ppo_privileged,
    "sb3_dqn_privileged": run_sb3_dqn_privileged,
    "sb3_ppo_raw": run_sb3_ppo_raw,
    "sb3_sac": run_sb3_sac,
    "sb3_sac_privileged": run_sb3_sac_privileged,
}
"""Method name -> run function. Insertion order is the default run order."""

METHOD_ENVS: dict[str, tuple[str, ...]] = {
    "expert": ("grid", "ant"),
    "internal_rl": ("grid", "ant"),
    "raw_action_rl": ("grid", "ant"),
    "compile_rl": ("grid",),
    "internal_rl_beta1": ("grid", "ant"),
    "internal_rl_cotrained": ("grid",),
    "sb3_recurrent_ppo": ("grid",),
    "sb3_ppo_privileged": ("grid", "ant"),
    "sb3_dqn_privileged": ("grid",),
    "sb3_ppo_raw": ("ant",),
    "sb3_sac": ("ant",),
    "sb3_sac_privileged": ("ant",),
}
"""Method name -> the short env names it runs on (issue #7: the ant's baselines are raw-action RL,
β ≡ 1 and PPO and SAC, raw and privileged; DQN needs discrete actions; co-training and CompILE are
grid-only here, ``benchmarks.pipeline_methods``)."""


def register_method(name: str, method: MethodFn, *, replace: bool = False, envs: tuple[str, ...] | None = None) -> None:
    """Add ``method`` to :data:`METHOD_REGISTRY` under ``name`` (module docstring, "Methods"),
    runnable on ``envs`` (default: every env of :data:`ENV_IDS`)."""
    if not isinstance(name, str) or not name or "__" in name or "/" in name:
        raise ValueError(f"method name must be a non-empty string without '__' or '/', got {name!r}")
    if not callable(method):
        raise TypeError(f"method must be callable, got {method!r}")
    if name in METHOD_REGISTRY and not replace and METHOD_REGISTRY[name] is not method:
        raise ValueError(f"method {name!r} is already registered; pass replace=True to override it")
    envs = tuple(ENV_IDS) if envs is None else tuple(envs)
    unknown = [env for env in envs if env not in ENV_IDS]
    if not envs or unknown:
        raise ValueError(f"envs must be a non-empty tuple of {sorted(ENV_IDS)}, got {envs!r}")
    METHOD_REGISTRY[name] = method
    METHOD_ENVS[name] = envs


# ---------------------------------------------------------------------- arguments
@dataclass(frozen=True)
class RunAllConfig:
    """Command line of ``run_all.py`` (SPEC B5, B6)."""

    preset: Literal["smoke", "default", "paper"] = "default"
    """Budgets and schedule (SPEC B5)."""
    env: str = "grid"
    """Comma list of short env names (``grid``, ``ant``)."""
    methods: str | None = None
    """Comma list of registered methods; default: every registered method."""
    seeds: str | None = None
    """``"0,1,2"`` runs those seeds; a single integer ``N`` runs seeds ``0..N-1``; default: the preset's."""
    out: Path | None = None
    """Results folder; default ``results/<preset>``."""
    executor: Literal["local", "ray"] = "local"
    """``local`` process pool or ``ray`` tasks."""
    ray_address: str | None = None
    """Ray cluster address (``auto``, ``ray://host:10001``); default: start a local Ray instance."""
    workers: int = 1
    """Runs executing at once (local processes, or Ray tasks in flight)."""
    reference: str = DEFAULT_REFERENCE_METHOD
    """Method whose probability of improvement over the others is reported."""
    progress: bool = True
    """Show a progress bar over runs."""
    base_model: Path | None = None
    """Reuse this pretrained ``model.pt`` of the (single) ``--env`` (e.g. from
    ``python -m agents.base_model_study [--env ant]``) instead of pretraining one in the results
    folder; needs ``--dstar``."""
    dstar: Path | None = None
    """D* dataset (ε = 0) that goes with ``--base-model``."""


def parse_seeds(seeds: str | None, default: tuple[int, ...]) -> tuple[int, ...]:
    """``"0,1,2"`` -> (0, 1, 2); ``"3"`` -> (0, 1, 2); ``"5,"`` -> (5,); ``None`` -> ``default``."""
    if seeds is None:
        return default
    text = str(seeds).strip()
    try:
        if "," in text:
            parsed = tuple(int(part) for part in text.split(",") if part.strip())
        else:
            count = int(text)
            if count < 1:
                raise ValueError
            parsed = tuple(range(count))
    except ValueError:
        message = f"seeds must be a comma list of non-negative ints or a positive count, got {seeds!r}"
        raise ValueError(message) from None
    if not parsed or any(s < 0 for s in parsed) or len(set(parsed)) != len(parsed):
        raise ValueError(f"seeds must be distinct non-negative ints, got {seeds!r}")
    return parsed


def _comma_list(text: str | None, known: Mapping[str, Any], what: str) -> tuple[str, ...]:
    if text is None:
        return tuple(known)
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in names if name not in known]
    if not names or unknown:
        raise ValueError(f"unknown {what} {unknown or text!r}; expected a comma list of {sorted(known)}")
    if len(set(names)) != len(names):
        raise ValueError(f"each {what} may be named once, got {text!r}")
    return names


# --------------------------------------------------------------------------- jobs
@dataclass(frozen=True)
class RunJob:
    """One (env, method, seed) run and where its outputs go."""

    env: str
    method: str
    seed: int
    run_path: Path
    work_dir: Path


def _execute_run(method_fn: MethodFn, env: str, seed: int, preset: BenchmarkPreset, work_dir: Path) -> dict[str, Any]:
    """Worker-side body of one run (a top-level function so process pools and Ray can ship it);
    the method sees the preset with ``env``'s overrides applied. It runs under the work folder's
    ``worker.lock`` (module docstring, "Several invocations"), waiting for any earlier worker."""
    with pipeline_methods.exclusive_lock(work_dir / "worker.lock"):
        return method_fn(env, seed, preset.for_env(env), work_dir)


def _exit_with_parent(parent_pid: int, poll_s: float = 1.0) -> None:
    """Initializer of the local worker pool: a daemon thread ends this worker once the run_all
    process that started it is gone (its parent pid changes), so killing an invocation, even with
    SIGKILL, leaves no orphan training on. Trainers write checkpoints atomically, so ending
    mid-run loses at most the work since the last checkpoint."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _plain(value: object) -> object:
    """JSON form of the values configs hold besides JSON's own (``json.dumps``'s ``default``): paths
    as strings, classes (an SB3 ``activation_fn``) by their qualified name; anything else is
    refused, so a fingerprint never hashes an object's memory address."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    raise TypeError(f"preset_fingerprint cannot hash a {type(value).__name__} ({value!r}); keep configs plain data")


def preset_fingerprint(preset: BenchmarkPreset, env: str) -> str:
    """sha256 of everything that decides a run of ``env`` under ``preset``: its budgets and
    schedule (``preset.for_env(env)``), the trainer presets its pipeline methods use
    (``pipeline_methods.pipeline_configs``) and the SB3 hyperparameters of ``env``.

    Run records carry it (``preset_fingerprint``), so a results folder refuses runs made before a
    preset changed instead of skipping them into the new table (the grid ``default`` backbone
    changed in session 33, while ``results/`` held runs of the old one)."""
    from agents.baselines.sb3_agents import HYPERPARAMS

    payload = {
        # env_overrides are applied by for_env; another env's entries there do not touch this env's runs
        "benchmark": {k: v for k, v in dataclasses.asdict(preset.for_env(env)).items() if k != "env_overrides"},
        "pipeline": pipeline_methods.pipeline_configs(preset, env),
        "sb3": {algo: per_env[ENV_IDS[env]] for algo, per_env in sorted(HYPERPARAMS.items()) if ENV_IDS[env] in per_env},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=_plain).encode()).hexdigest()


def _finished(path: Path, preset_name: str, fingerprint: str) -> bool:
    """Whether ``path`` holds a valid run record of preset ``preset_name`` as it is now (its
    ``fingerprint``, ``preset_fingerprint``); then the run is skipped.

    A record of another preset raises ``ValueError``: its budget and schedule differ, so skipping
    it would put it in this preset's table, and redoing it would overwrite another preset's result.
    So does a record of another version of this preset (another fingerprint, or none: written
    before records carried one), whose trainers or budgets differ from today's.
    """
    if not path.is_file():
        return False
    try:
        record = validate_run_record(json.loads(path.read_text()), str(path))
    except (ValueError, OSError):
        print(f"warning: {path} is unreadable or invalid; the run will be redone", file=sys.stderr)
        return False
    if record.get("preset") != preset_name:
        raise ValueError(f"{path} is a run of preset {record.get('preset')!r}, not {preset_name!r}; give each preset "
                         "its own --out folder")
    if record.get("preset_fingerprint") != fingerprint:
        made = (f"with preset_fingerprint {record['preset_fingerprint'][:12]}…" if "preset_fingerprint" in record
                else "before run records carried a preset_fingerprint")
        raise ValueError(f"{path} was made {made}, but preset {preset_name!r} is now {fingerprint[:12]}…: its "
                         "trainer configs or budgets have changed since; give this version its own --out folder")
    return True


def _claim(job: RunJob) -> IO[str] | None:
    """Take ``job``'s run lock without waiting (module docstring, "Several invocations"): the open
    lock file, whose closing releases the claim, or None when another process holds it."""
    job.work_dir.mkdir(parents=True, exist_ok=True)
    handle = open(job.work_dir / "run.lock", "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def _record(job: RunJob, result: object, preset: BenchmarkPreset, fingerprint: str) -> dict[str, Any]:
    """``result`` as the run record written to ``job.run_path``, carrying ``fingerprint`` (the
    ``preset_fingerprint`` of ``job.env`` that the folder was checked against before the run)."""
    if not isinstance(result, Mapping):
        raise TypeError(f"method {job.method!r} must return a dict run record, got {type(result).__name__}")
    for key, expected in (("method", job.method), ("env", job.env), ("seed", job.seed)):
        if key in result and result[key] != expected:
            raise ValueError(
                f"method {job.method!r} returned {key}={result[key]!r} for the run with {key}={expected!r}"
            )
    record = {
        "schema_version": RUN_SCHEMA_VERSION,
        "method": job.method,
        "env": job.env,
        "seed": job.seed,
        **{k: v for k, v in result.items() if k not in ("method", "env", "seed", "schema_version")},
        "preset": preset.name,
        "preset_fingerprint": fingerprint,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    return validate_run_record(record, f"run {job.run_path.name}")


def _iter_local(jobs: list[RunJob], preset: BenchmarkPreset, workers: int) -> Iterator[tuple[RunJob, Any, str | None]]:
    context = multiprocessing.get_context("spawn")  # no fork after torch is loaded
    executor = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context,
                                   initializer=_exit_with_parent, initargs=(os.getpid(),))
    try:
        futures: dict[Future, RunJob] = {
            executor.submit(_execute_run, METHOD_REGISTRY[job.method], job.env, job.seed, preset, job.work_dir): job
            for job in jobs
        }
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                error = future.exception()
                if error is None:
                    yield futures[future], future.result(), None
                else:
                    yield futures[future], None, "".join(traceback.format_exception(error))
    except BaseException:
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown(wait=True)


def _iter_ray(
    jobs: list[RunJob], preset: BenchmarkPreset, workers: int, address: str | None
) -> Iterator[tuple[RunJob, Any, str | None]]:
    try:
        import ray
    except ImportError as error:
        message = "--executor ray needs Ray, which is not installed; install it with `pip install ray`"
        raise ImportError(message) from error
    if address:
        ray.init(address=address, ignore_reinit_error=True)
    else:
        ray.init(num_cpus=workers, ignore_reinit_error=True)
    remote_run = ray.remote(num_cpus=1, max_retries=0)(_execute_run)
    queue = list(jobs)
    in_flight: dict[Any, RunJob] = {}
    while queue or in_flight:
        while queue and len(in_flight) < workers:
            job = queue.pop(0)
            ref = remote_run.remote(METHOD_REGISTRY[job.method], job.env, job.seed, preset, job.work_dir)
            in_flight[ref] = job
        done, _ = ray.wait(list(in_flight), num_returns=1)
        job = in_flight.pop(done[0])
        try:
            yield job, ray.get(done[0]), None
        except ray.exceptions.RayError as error:  # the run raised on the worker
            yield job, None, str(error)


# --------------------------------------------------------------------------- loop
def run_benchmark(config: RunAllConfig, preset: BenchmarkPreset | None = None) -> dict[str, Any]:
    """Run every (env, method, seed) of ``config`` that has no result yet, then report (SPEC B6).

    ``preset`` replaces ``PRESETS[config.preset]`` (tests use a smaller one). Returns
    ``{"out", "ran", "skipped", "busy", "failed", "report", "wall_s"}``; ``ran``/``skipped``/``busy``/
    ``failed`` list ``(env, method, seed)`` (``busy``: claimed by another invocation, not run here).
    Raises ``RuntimeError`` after reporting if any run failed (the failed runs have no JSON, so the
    next invocation retries them).
    """
    start = time.perf_counter()
    preset = PRESETS[config.preset] if preset is None else preset
    if not isinstance(preset, BenchmarkPreset):
        raise TypeError(f"preset must be a BenchmarkPreset, got {type(preset).__name__}")
    envs = _comma_list(config.env, ENV_IDS, "env")
    methods = _comma_list(config.methods, METHOD_REGISTRY, "method")
    for env in envs:
        unsupported = [m for m in methods if env not in METHOD_ENVS.get(m, tuple(ENV_IDS))]
        if config.methods is not None and unsupported:
            raise ValueError(f"method(s) {unsupported} do not run on env {env!r} (METHOD_ENVS)")
    if isinstance(config.workers, bool) or not isinstance(config.workers, int) or config.workers < 1:
        raise ValueError(f"workers must be a positive int, got {config.workers!r}")
    if config.executor not in ("local", "ray"):
        raise ValueError(f"executor must be 'local' or 'ray', got {config.executor!r}")
    if (config.base_model is None) != (config.dstar is None):
        raise ValueError(f"--base-model and --dstar go together, got {config.base_model!r} and {config.dstar!r}")
    if config.base_model is not None:
        if len(envs) != 1:
            raise ValueError(f"--base-model belongs to one env; got --env {config.env!r}")
        key = f"{envs[0]}_pipeline"
        options = dict(preset.method_options)
        options[key] = {**options.get(key, {}), "base_model": str(Path(config.base_model).resolve()),
                        "dstar": str(Path(config.dstar).resolve())}
        preset = dataclasses.replace(preset, method_options=options)
    # absolute, so that Ray workers, whose working directory may differ, write into the same folder
    out = (Path(config.out) if config.out is not None else Path("results") / preset.name).resolve()
    (out / "runs").mkdir(parents=True, exist_ok=True)
    fingerprints = {env: preset_fingerprint(preset, env) for env in envs}

    jobs, skipped, busy = [], [], []
    claims: dict[tuple[str, str, int], IO[str]] = {}
    try:
        for env in envs:
            env_preset = preset.for_env(env)
            seeds = parse_seeds(config.seeds, env_preset.seeds)
            for method in methods:
                if env not in METHOD_ENVS.get(method, tuple(ENV_IDS)):
                    continue
                for seed in seeds:
                    key = (env, method, seed)
                    run_path = out / "runs" / run_filename(env, method, seed)
                    job = RunJob(env, method, seed, run_path, out / "work" / env / method / f"seed{seed}")
                    claim = _claim(job)
                    if claim is None:
                        busy.append(key)
                        print(f"run {key} is busy: another run_all.py process holds {job.work_dir / 'run.lock'}; "
                              "left to it", file=sys.stderr)
                        continue
                    claims[key] = claim  # released in `finally` if the check below refuses the folder
                    if _finished(job.run_path, preset.name, fingerprints[env]):  # checked under the claim: no process writes it
                        claims.pop(key).close()
                        skipped.append(key)
                    else:
                        jobs.append(job)

        ran, failed = [], []
        if jobs:
            if config.executor == "ray":
                results = _iter_ray(jobs, preset, config.workers, config.ray_address)
            else:
                results = _iter_local(jobs, preset, config.workers)
            with _RunProgress(config.progress, len(jobs) + len(skipped), len(skipped)) as advance:
                for job, result, error in results:
                    key = (job.env, job.method, job.seed)
                    if error is None:
                        try:
                            write_json_atomic(job.run_path, _record(job, result, preset, fingerprints[job.env]))
                            ran.append(key)
                        except (TypeError, ValueError) as bad:
                            error = f"{type(bad).__name__}: {bad}"
                    if error is not None:
                        failed.append(key)
                        print(f"run {key} failed:\n{error}", file=sys.stderr)
                    claims.pop(key).close()
                    advance(f"{job.env}/{job.method}/seed{job.seed}")
    finally:
        for claim in claims.values():
            claim.close()

    wall_s = time.perf_counter() - start
    write_manifest(out, sys.argv if sys.argv and sys.argv[0] else ["run_benchmark"], preset, wall_s)
    report = write_report(out, reference_method=config.reference, preset_name=preset.name) if load_runs(out) else None
    summary = {"out": out, "ran": ran, "skipped": skipped, "busy": busy, "failed": failed, "report": report,
               "wall_s": wall_s}
    if failed:
        raise RuntimeError(f"{len(failed)} run(s) failed (no JSON written; re-run to retry): {failed}")
    return summary


class _RunProgress:
    """A rich progress bar over runs (or nothing); ``advance(label)`` marks one run done."""

    def __init__(self, enabled: bool, total: int, already_done: int) -> None:
        self.enabled, self.total, self.already_done = enabled, total, already_done
        self._bar: Any = None

    def __enter__(self) -> Callable[[str], None]:
        if not self.enabled:
            return lambda label: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(
            TextColumn("[bold]runs[/bold] {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
        )
        self._bar.start()
        task = self._bar.add_task("", total=self.total, completed=self.already_done)
        return lambda label: self._bar.update(task, advance=1, description=label)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def main(config: RunAllConfig) -> dict[str, Any]:
    """Entry point of ``python benchmarks/run_all.py`` (flags generated from :class:`RunAllConfig`)."""
    summary = run_benchmark(config)
    print(
        f"{len(summary['ran'])} run(s) finished, {len(summary['skipped'])} skipped (already done), "
        f"{len(summary['busy'])} busy (run by another process) in "
        f"{summary['wall_s']:.1f} s; results in {summary['out']}"
    )
    if summary["report"] is not None:
        print(summary["report"]["summary_md"].read_text())
    return summary


if __name__ == "__main__":
    import tyro

    # Re-import by package name so worker processes unpickle `benchmarks.run_all.*`, not `__main__.*`.
    from benchmarks.run_all import RunAllConfig as _RunAllConfig
    from benchmarks.run_all import main as _main

    _main(tyro.cli(_RunAllConfig))
