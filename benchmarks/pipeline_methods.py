"""Benchmark methods that share one pretrained base model per env (SPEC A§6, A§7.1, B5, B6).

``run_all.py`` runs every method × seed; the methods here all steer or finetune the *same*
pretrained base model of an env (grid transformer or ant Hawk SSM), and the internal-RL
variants share metacontrollers, so those are built once per results folder and env and reused
("shared artifacts"):

=====================  =====================================================================
method                 what is trained per seed, on top of which shared artifact
=====================  =====================================================================
``internal_rl``        code policy (SPEC A§6) on the frozen base model + metacontroller
``internal_rl_beta1``  the same, metacontroller trained and used with β ≡ 1 (SPEC A§7.1 item 3)
``internal_rl_cotrained``  the same, metacontroller co-trained with a fresh base model (item 4)
``compile_rl``         code policy on CompILE's decoder and co-trained base model (item 2)
``raw_action_rl``      the whole base model, finetuned in raw action space (item 1)
=====================  =====================================================================

``internal_rl``, ``internal_rl_beta1`` and ``raw_action_rl`` run on both envs; the co-trained
and CompILE variants are grid-only here: issue #7's ant table asks for raw-action RL, β ≡ 1 and
the SB3 agents, and this CompILE is grid-only (one-hot actions, a transformer backbone). The
co-training trainer can start the ant's θ from the pretrained weights, as the paper does
(``MetacontrollerTrainConfig.cotrain_init``), but no ant method uses it.

Every RL method uses the same critic-free clipped algorithm, batch size and episode budget
(``BenchmarkPreset.train_episodes``). Curves are the success rate of each training batch of
the stochastic policy against the training episodes that policy had learned from, as the paper
plots them (SPEC A§7.2); the last update is therefore not scored.

Shared artifacts live in ``<out>/work/<env>/_shared/`` (datasets D and D*, ``base_model/``,
``metacontroller_*``, ``compile/``); each is built under a file lock by the first run that
needs it, with the resumable trainers of ``agents/``, so parallel workers never build one twice
and an interrupted build resumes. ``method_options["<env>_pipeline"]`` with ``base_model`` and
``dstar`` points at an existing ``model.pt`` and its D* to skip pretraining, e.g. the ones
written by ``python -m agents.base_model_study [--env ant]``.

Timing: a run's ``wall_s`` is its own training time, the trainer's ``elapsed_s`` at the last
update, summed over the processes of a resumed run. Getting the shared artifacts (building
them, or waiting on another run's lock) is a one-off cost of the results folder, not of the
run: it is kept apart as ``config["shared_setup_s"]``, this process's time before training, and
``config["shared_build_s"]`` gives each shared artifact's own training-loop time (from its
``metrics.csv``, summed over resumes), which the report lists under each env's table.
"""

from __future__ import annotations

import dataclasses
import fcntl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ANT_PIPELINES",
    "GRID_PIPELINES",
    "Pipeline",
    "pipeline_configs",
    "pipeline_for",
    "run_compile_rl",
    "run_internal_rl",
    "run_internal_rl_beta1",
    "run_internal_rl_cotrained",
    "run_raw_action_rl",
    "shared_dir",
]


@dataclass(frozen=True)
class Pipeline:
    """Which presets of the ``agents`` trainers a benchmark preset uses (SPEC B5)."""

    study: str
    """Preset of :mod:`agents.base_model_study` for datasets and pretraining."""
    metacontroller: str
    """Preset of :data:`agents.train_metacontroller.METACONTROLLER_PRESETS`."""
    kl_weight: float
    """α of the metacontroller (chosen by ``agents.internal_rl_study``'s sweep, SPEC A§5.2)."""
    rl: str
    """Preset of :data:`agents.internal_rl.INTERNAL_RL_PRESETS` (raw-action RL mirrors it)."""
    compile: str
    """Preset of :data:`agents.baselines.compile_latent.COMPILE_PRESETS`."""


GRID_PIPELINES: dict[str, Pipeline] = {
    "smoke": Pipeline("smoke", "smoke", 0.1, "smoke", "smoke"),
    "default": Pipeline("default", "default", 0.1, "default", "default"),
    "paper": Pipeline("paper", "paper", 0.1, "paper", "paper"),
}
"""Benchmark preset name -> trainer presets (grid)."""

ANT_PIPELINES: dict[str, Pipeline] = {name: Pipeline(name, name, 0.1, name, "") for name in ("smoke", "default", "paper")}
"""Benchmark preset name -> the ``ANT_*`` trainer presets of the same name (no CompILE on the ant)."""


def shared_dir(out_dir: Path) -> Path:
    """``<out>/work/<env>/_shared`` for a run whose work folder is ``<out>/work/<env>/<method>/seed<N>``."""
    return Path(out_dir).resolve().parents[1] / "_shared"


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``fcntl.flock`` on ``path`` (created with its folder), waiting for any
    other holder; a killed holder releases it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


BASE_MODEL_DIR = "base_model"
"""Folder of the shared pretrained base model (and of its lock, with ``.lock``) in ``shared``."""


def code_model_dir(variant: str) -> str:
    """Folder of the shared code model that internal-RL ``variant`` steers with: CompILE's for
    ``"compile"``, else the metacontroller trained for ``variant`` (SPEC A§7.1)."""
    return "compile" if variant == "compile" else f"metacontroller_{variant}"


def pipeline_for(preset: Any, env: str) -> Pipeline:
    """The trainer presets of ``env`` for benchmark ``preset`` (``method_options["<env>_pipeline"]["name"]``
    overrides the preset's name)."""
    pipelines = {"grid": GRID_PIPELINES, "ant": ANT_PIPELINES}
    if env not in pipelines:
        raise ValueError(f"no pipelines for env {env!r}; expected one of {sorted(pipelines)}")
    name = preset.method_options.get(f"{env}_pipeline", {}).get("name", preset.name)
    if name not in pipelines[env]:
        raise ValueError(f"no {env} pipeline for preset {name!r}; expected one of {sorted(pipelines[env])}")
    return pipelines[env][name]


def pipeline_configs(preset: Any, env: str) -> dict[str, Any] | None:
    """Every trainer config the pipeline methods of ``env`` train with under benchmark ``preset``,
    as plain data: D / D* and pretraining, metacontroller, internal RL, raw-action RL and (grid)
    CompILE; None for a preset without trainer presets of that name (one that runs only SB3 or
    registered methods). ``run_all.py`` fingerprints it, so that runs made before one of these
    presets changed are not skipped into a newer table (``preset_fingerprint`` there)."""
    from agents.base_model_study import ANT_STUDY_PRESETS, STUDY_PRESETS
    from agents.baselines.compile_latent import COMPILE_PRESETS
    from agents.baselines.raw_action_rl import ANT_RAW_ACTION_RL_PRESETS, RAW_ACTION_RL_PRESETS
    from agents.internal_rl import ANT_INTERNAL_RL_PRESETS, INTERNAL_RL_PRESETS
    from agents.train_metacontroller import ANT_METACONTROLLER_PRESETS, METACONTROLLER_PRESETS

    try:
        pipeline = pipeline_for(preset, env)
    except ValueError:
        return None
    grid = env == "grid"
    study = (STUDY_PRESETS if grid else ANT_STUDY_PRESETS)[pipeline.study]
    configs = {
        "pipeline": pipeline,
        "data": study.data,
        "pretrain": study.pretrain,
        "metacontroller": (METACONTROLLER_PRESETS if grid else ANT_METACONTROLLER_PRESETS)[pipeline.metacontroller],
        "internal_rl": (INTERNAL_RL_PRESETS if grid else ANT_INTERNAL_RL_PRESETS)[pipeline.rl],
        "raw_action_rl": (RAW_ACTION_RL_PRESETS if grid else ANT_RAW_ACTION_RL_PRESETS)[pipeline.rl],
    }
    if grid:
        configs["compile"] = COMPILE_PRESETS[pipeline.compile]
    return {name: dataclasses.asdict(config) for name, config in configs.items()}


def _base_model_and_dstar(preset: Any, shared: Path, env: str) -> tuple[Path, Path]:
    """Pretrained ``model.pt`` and D* path: the preset's, or built once in ``shared``."""
    options = preset.method_options.get(f"{env}_pipeline", {})
    if options.get("base_model"):
        base_model, dstar = Path(options["base_model"]), Path(options["dstar"])
        for path in (base_model, dstar):
            if not path.is_file():
                raise FileNotFoundError(f"{env}_pipeline option points at {path}, which does not exist")
        return base_model, dstar
    from agents.base_model_study import ANT_STUDY_PRESETS, STUDY_PRESETS, ensure_datasets
    from agents.pretrain import pretrain

    study = (STUDY_PRESETS if env == "grid" else ANT_STUDY_PRESETS)[pipeline_for(preset, env).study]
    with exclusive_lock(shared / f"{BASE_MODEL_DIR}.lock"):
        d_data, _ = ensure_datasets(study.data, shared, progress=False)
        model_path = pretrain(study.pretrain, d_data, shared / BASE_MODEL_DIR, progress=False)
    return model_path, shared / "data_Dstar.npz"


def _metacontroller(preset: Any, shared: Path, variant: str, env: str) -> tuple[Any, Any]:
    """(base model, metacontroller) for ``variant`` in ``standard`` / ``beta1`` / ``cotrained``."""
    from agents.models.controller import freeze
    from agents.pretrain import load_base_model
    from agents.train_metacontroller import (
        ANT_METACONTROLLER_PRESETS,
        METACONTROLLER_PRESETS,
        load_cotrained_base_model,
        load_metacontroller,
        train_metacontroller,
    )
    from hier_envs.datasets import load_dataset

    pipeline = pipeline_for(preset, env)
    base_path, dstar_path = _base_model_and_dstar(preset, shared, env)
    base_model = freeze(load_base_model(base_path))
    config = (METACONTROLLER_PRESETS if env == "grid" else ANT_METACONTROLLER_PRESETS)[pipeline.metacontroller]
    mc = dataclasses.replace(config.metacontroller, kl_weight=pipeline.kl_weight, force_switch=variant == "beta1")
    config = dataclasses.replace(config, metacontroller=mc, cotrain=variant == "cotrained")
    with exclusive_lock(shared / f"{code_model_dir(variant)}.lock"):
        path = train_metacontroller(config, base_model, load_dataset(dstar_path), shared / code_model_dir(variant),
                                    progress=False)
    if variant == "cotrained":
        base_model = freeze(load_cotrained_base_model(path))
    return base_model, freeze(load_metacontroller(path, base_model.config.width, base_model.config.controlled_layer))


def _rl_config(preset: Any, seed: int, env: str) -> Any:
    from agents.internal_rl import ANT_INTERNAL_RL_PRESETS, INTERNAL_RL_PRESETS

    config = (INTERNAL_RL_PRESETS if env == "grid" else ANT_INTERNAL_RL_PRESETS)[pipeline_for(preset, env).rl]
    return dataclasses.replace(config, seed=seed, total_episodes=_episode_budget(preset, config.batch_episodes))


def _episode_budget(preset: Any, batch_episodes: int) -> int:
    """``preset.train_episodes`` rounded up to whole batches, so every method trains on at least the budget."""
    return -(-preset.train_episodes // batch_episodes) * batch_episodes


def _shared_build_s(shared: Path, artifacts: tuple[str, ...]) -> dict[str, float]:
    """Training-loop seconds of each artifact folder in ``shared`` that has a ``metrics.csv`` with an
    ``elapsed_s`` column (its last row: the trainers sum it over resumes); others are left out."""
    from agents.training_utils import CsvLog

    build_s = {}
    for name in artifacts:
        path = shared / name / "metrics.csv"
        if not path.is_file():
            continue
        rows = CsvLog(path, ["step"]).read()
        if rows and rows[-1].get("elapsed_s"):
            build_s[name] = float(rows[-1]["elapsed_s"])
    return build_s


def _record(curve_rows: list[dict[str, Any]], config: Any, shared_setup_s: float, extra: dict[str, Any],
            shared_build_s: dict[str, float]) -> dict[str, Any]:
    """The run JSON of a pipeline method: ``wall_s`` is the last curve point's training time, the
    shared-artifact times go to ``config["shared_setup_s"]`` and ``["shared_build_s"]`` (module
    docstring, "Timing").

    A trainer's curve row ``k`` holds the success of batch ``k``, collected by the policy that had
    learned from the batches before it; the row's ``episodes`` and ``env_steps`` count batch ``k``
    too. The run JSON puts each point at what its policy had learned from (the previous row's
    counts, 0 for the first), as the SB3 baselines' evaluations are: the first point is the
    untrained policy at 0 episodes (``benchmarks.reporting``'s schema). Records written before
    this placed every point one batch later."""
    from agents.internal_rl import learned_from

    curve = [
        {"episodes": episodes, "env_steps": env_steps, "success_rate": float(row["success_rate"]),
         "wall_s": float(row["elapsed_s"])}
        for row, (episodes, env_steps) in zip(curve_rows, learned_from(curve_rows))
    ]
    return {
        "privileged": False,
        "curve": curve,
        "final_success_rate": curve[-1]["success_rate"],
        "wall_s": curve[-1]["wall_s"],
        "config": {**dataclasses.asdict(config), **extra, "shared_setup_s": shared_setup_s,
                   "shared_build_s": shared_build_s},
    }


def _internal_rl_run(variant: str, env: str, seed: int, preset: Any, out_dir: Path,
                     generator: Callable[[Any, Path], tuple[Any, Any]] | None = None) -> dict[str, Any]:
    from agents.internal_rl import train_internal_rl
    from agents.training_utils import CsvLog

    if variant in ("cotrained", "compile") and env != "grid":
        raise ValueError(f"internal RL variant {variant!r} runs on env 'grid' only, got {env!r}")
    tic = time.perf_counter()
    shared = shared_dir(out_dir)
    base_model, code_model = (generator or (lambda p, s: _metacontroller(p, s, variant, env)))(preset, shared)
    shared_setup_s = time.perf_counter() - tic
    config = _rl_config(preset, seed, env)
    train_internal_rl(config, base_model, code_model, out_dir, progress=False)
    rows = CsvLog(out_dir / "learning_curve.csv", ["update"], "update").read()
    return _record(rows, config, shared_setup_s, {"variant": variant, "shared": str(shared)},
                   _shared_build_s(shared, (BASE_MODEL_DIR, code_model_dir(variant))))


def run_internal_rl(env: str, seed: int, preset: Any, out_dir: Path) -> dict[str, Any]:
    """Internal RL (SPEC A§6) on the frozen base model and the standard metacontroller."""
    return _internal_rl_run("standard", env, seed, preset, out_dir)


def run_internal_rl_beta1(env: str, seed: int, preset: Any, out_dir: Path) -> dict[str, Any]:
    """Internal RL without temporal abstraction: β ≡ 1 in metacontroller training and RL (SPEC A§7.1 item 3)."""
    return _internal_rl_run("beta1", env, seed, preset, out_dir)


def run_internal_rl_cotrained(env: str, seed: int, preset: Any, out_dir: Path) -> dict[str, Any]:
    """Internal RL on a metacontroller co-trained with a fresh base model (SPEC A§7.1 item 4)."""
    return _internal_rl_run("cotrained", env, seed, preset, out_dir)


def _compile_generator(preset: Any, shared: Path) -> tuple[Any, Any]:
    from agents.baselines.compile_latent import COMPILE_PRESETS, load_compile, train_compile
    from agents.models.controller import freeze
    from hier_envs.datasets import load_dataset

    base_path, dstar_path = _base_model_and_dstar(preset, shared, "grid")
    with exclusive_lock(shared / f"{code_model_dir('compile')}.lock"):
        path = train_compile(base_path, load_dataset(dstar_path), COMPILE_PRESETS[pipeline_for(preset, "grid").compile],
                             shared / code_model_dir("compile"), progress=False)
    model, base_model = load_compile(path)
    return freeze(base_model), freeze(model)


def run_compile_rl(env: str, seed: int, preset: Any, out_dir: Path) -> dict[str, Any]:
    """Internal RL over CompILE's codes, steering CompILE's co-trained base model (SPEC A§7.1 item 2)."""
    return _internal_rl_run("compile", env, seed, preset, out_dir, generator=_compile_generator)


def run_raw_action_rl(env: str, seed: int, preset: Any, out_dir: Path) -> dict[str, Any]:
    """RL finetuning of the whole base model in raw action space (SPEC A§7.1 item 1)."""
    from agents.baselines.raw_action_rl import ANT_RAW_ACTION_RL_PRESETS, RAW_ACTION_RL_PRESETS, train_raw_action_rl

    tic = time.perf_counter()
    shared = shared_dir(out_dir)
    base_path, _ = _base_model_and_dstar(preset, shared, env)
    shared_setup_s = time.perf_counter() - tic
    config = (RAW_ACTION_RL_PRESETS if env == "grid" else ANT_RAW_ACTION_RL_PRESETS)[pipeline_for(preset, env).rl]
    config = dataclasses.replace(config, seed=seed, total_episodes=_episode_budget(preset, config.batch_episodes))
    result = train_raw_action_rl(base_path, config, out_dir, progress=False)
    return _record(result["curve"], config, shared_setup_s, {"base_model": str(base_path)},
                   _shared_build_s(shared, (BASE_MODEL_DIR,)))
