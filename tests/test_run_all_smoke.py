"""benchmarks/run_all.py end to end with the SB3 methods, a tiny preset and resume (SPEC B5, B6)."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.run_all import (
    METHOD_REGISTRY,
    PRESETS,
    BenchmarkPreset,
    RunAllConfig,
    parse_seeds,
    register_method,
    run_benchmark,
)

SB3_METHODS = ("sb3_recurrent_ppo", "sb3_ppo_privileged", "sb3_dqn_privileged")

# Test-only shrink of the smoke preset: same wiring, a fraction of its budget.
TINY = dataclasses.replace(
    PRESETS["smoke"],
    name="smoke",
    train_episodes=40,
    eval_every_episodes=20,
    eval_episodes=4,
    sb3_overrides={"recurrent_ppo": {"n_steps": 16}, "ppo": {"n_steps": 16}, "dqn": {"learning_starts": 50}},
)


def test_smoke_runs_reports_and_resumes(tmp_path: Path) -> None:
    config = RunAllConfig(
        preset="smoke", env="grid", methods=",".join(SB3_METHODS), seeds="0,", out=tmp_path, progress=False
    )
    first = run_benchmark(config, preset=TINY)
    assert sorted(first["ran"]) == sorted(("grid", method, 0) for method in SB3_METHODS)
    assert first["skipped"] == [] and first["failed"] == []

    runs = sorted((tmp_path / "runs").glob("*.json"))
    assert [p.name for p in runs] == sorted(f"grid__{m}__seed0.json" for m in SB3_METHODS)
    for path in runs:
        record = json.loads(path.read_text())
        assert record["schema_version"] == 1 and record["env"] == "grid" and record["seed"] == 0
        assert record["privileged"] == ("privileged" in record["method"])
        assert record["curve"][0]["episodes"] == 0
        assert record["curve"][-1]["episodes"] >= TINY.train_episodes
        assert record["final_success_rate"] == record["curve"][-1]["success_rate"]
        assert record["config"]["eval_episodes"] == TINY.eval_episodes
        assert Path(record["config"]["model_path"]).is_file()

    with (tmp_path / "summary.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["method"] for row in rows) == sorted(SB3_METHODS)
    summary = (tmp_path / "summary.md").read_text()
    assert "Smoke preset" in summary
    for method in SB3_METHODS:
        assert f"| {method} |" in summary
    assert (tmp_path / "learning_curves_grid.png").stat().st_size > 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["preset_name"] == "smoke" and manifest["preset"]["train_episodes"] == 40

    mtimes = {p.name: p.stat().st_mtime_ns for p in runs}
    second = run_benchmark(config, preset=TINY)
    assert second["ran"] == [] and sorted(second["skipped"]) == sorted(first["ran"])
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*.json")} == mtimes
    assert len(json.loads((tmp_path / "manifest.json").read_text())["history"]) == 1


def _fake_method(env: str, seed: int, preset: BenchmarkPreset, out_dir: Path) -> dict:
    """A registered method that does no training (module-level so worker processes can load it)."""
    return {
        "privileged": False,
        "curve": [
            {"episodes": 0, "env_steps": 0, "success_rate": 0.0, "wall_s": 0.0},
            {"episodes": preset.train_episodes, "env_steps": 10, "success_rate": 1.0, "wall_s": 0.1},
        ],
        "final_success_rate": 1.0,
        "wall_s": 0.1,
        "config": {"seed_seen": seed, "out_dir_exists": out_dir.is_dir()},
    }


def test_registered_method_runs_without_editing_the_loop(tmp_path: Path) -> None:
    register_method("fake_internal_rl", _fake_method)
    try:
        config = RunAllConfig(
            env="grid", methods="fake_internal_rl", seeds="2", out=tmp_path, progress=False, reference="fake_internal_rl"
        )
        result = run_benchmark(config, preset=TINY)
        assert sorted(result["ran"]) == [("grid", "fake_internal_rl", 0), ("grid", "fake_internal_rl", 1)]
        record = json.loads((tmp_path / "runs" / "grid__fake_internal_rl__seed1.json").read_text())
        assert record["config"] == {"seed_seen": 1, "out_dir_exists": True}
        assert record["method"] == "fake_internal_rl"
    finally:
        METHOD_REGISTRY.pop("fake_internal_rl", None)


_HOLD_LOCK = """
import fcntl, sys, time
handle = open(sys.argv[1], "a")
fcntl.flock(handle, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(120)
"""


def test_a_run_claimed_by_another_process_is_left_to_it(tmp_path: Path) -> None:
    """Two invocations on one results folder never run the same run (module docstring of run_all)."""
    register_method("fake_internal_rl", _fake_method)
    try:
        config = RunAllConfig(env="grid", methods="fake_internal_rl", seeds="0,1", out=tmp_path, progress=False,
                              reference="fake_internal_rl")
        lock = tmp_path / "work" / "grid" / "fake_internal_rl" / "seed0" / "run.lock"
        lock.parent.mkdir(parents=True)
        other = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(lock)], stdout=subprocess.PIPE, text=True)
        try:
            assert other.stdout is not None and other.stdout.readline().strip() == "locked"
            first = run_benchmark(config, preset=TINY)
        finally:
            other.kill()
            other.wait()
        assert first["busy"] == [("grid", "fake_internal_rl", 0)]
        assert first["ran"] == [("grid", "fake_internal_rl", 1)]
        assert not (tmp_path / "runs" / "grid__fake_internal_rl__seed0.json").exists()

        # The other process is gone (its lock with it), and this one released its claims.
        second = run_benchmark(config, preset=TINY)
        assert second["ran"] == [("grid", "fake_internal_rl", 0)]
        assert second["skipped"] == [("grid", "fake_internal_rl", 1)] and second["busy"] == []
    finally:
        METHOD_REGISTRY.pop("fake_internal_rl", None)


def _slow_method(env: str, seed: int, preset: BenchmarkPreset, out_dir: Path) -> dict:
    """``_fake_method``, but with ``HIER_RL_TEST_SLOW_RUN`` set it first writes its pid and sleeps."""
    if os.environ.get("HIER_RL_TEST_SLOW_RUN"):
        (out_dir / "worker.pid.tmp").write_text(str(os.getpid()))
        os.replace(out_dir / "worker.pid.tmp", out_dir / "worker.pid")
        time.sleep(120)
    return _fake_method(env, seed, preset, out_dir)


def _timed_method(env: str, seed: int, preset: BenchmarkPreset, out_dir: Path) -> dict:
    """``_fake_method`` that records when the method started (``time.time()``)."""
    return {**_fake_method(env, seed, preset, out_dir), "config": {"started_at": time.time()}}


_RUN_SLOW = """
import sys
sys.path.insert(0, sys.argv[2])
from pathlib import Path
from benchmarks.run_all import RunAllConfig, register_method, run_benchmark
from tests.test_run_all_smoke import TINY, _slow_method

if __name__ == "__main__":
    register_method("slow_fake", _slow_method)
    run_benchmark(RunAllConfig(env="grid", methods="slow_fake", seeds="0,", out=Path(sys.argv[1]), progress=False,
                               reference="slow_fake"), preset=TINY)
"""


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_a_killed_invocation_leaves_no_worker_behind(tmp_path: Path) -> None:
    """SIGKILL to run_all ends its pool worker too (module docstring, "Several invocations"): an
    orphan would train on beside the next invocation, both writing one work folder."""
    script, out = tmp_path / "run_slow.py", tmp_path / "out"
    script.write_text(_RUN_SLOW)
    root = Path(__file__).resolve().parents[1]
    parent = subprocess.Popen([sys.executable, str(script), str(out), str(root)],
                              env={**os.environ, "HIER_RL_TEST_SLOW_RUN": "1"})
    pid_file = out / "work" / "grid" / "slow_fake" / "seed0" / "worker.pid"
    try:
        deadline = time.monotonic() + 120
        while not pid_file.exists():
            assert parent.poll() is None, "run_all ended before its worker started the run"
            assert time.monotonic() < deadline, "the worker never started the run"
            time.sleep(0.2)
        worker = int(pid_file.read_text())
        assert _alive(worker)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 15
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.2)
    orphan = _alive(worker)
    if orphan:
        os.kill(worker, signal.SIGKILL)
    assert not orphan, "the worker outlived its killed run_all process"

    register_method("slow_fake", _slow_method)  # the next invocation runs it (no sleep: the variable is unset)
    try:
        result = run_benchmark(RunAllConfig(env="grid", methods="slow_fake", seeds="0,", out=out, progress=False,
                                            reference="slow_fake"), preset=TINY)
    finally:
        METHOD_REGISTRY.pop("slow_fake", None)
    assert result["ran"] == [("grid", "slow_fake", 0)] and result["busy"] == []


_HOLD_LOCK_FOR = """
import fcntl, sys, time
handle = open(sys.argv[1], "a")
fcntl.flock(handle, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
print(repr(time.time()), flush=True)
"""


def test_a_worker_waits_for_one_left_from_an_earlier_invocation(tmp_path: Path) -> None:
    """The method starts only once no other process holds the work folder's ``worker.lock``."""
    lock = tmp_path / "work" / "grid" / "timed_fake" / "seed0" / "worker.lock"
    lock.parent.mkdir(parents=True)
    other = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK_FOR, str(lock), "5"], stdout=subprocess.PIPE, text=True)
    register_method("timed_fake", _timed_method)
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "locked"
        result = run_benchmark(RunAllConfig(env="grid", methods="timed_fake", seeds="0,", out=tmp_path, progress=False,
                                            reference="timed_fake"), preset=TINY)
        released_at = float(other.stdout.readline())
    finally:
        METHOD_REGISTRY.pop("timed_fake", None)
        other.kill()
        other.wait()
    assert result["ran"] == [("grid", "timed_fake", 0)]
    record = json.loads((tmp_path / "runs" / "grid__timed_fake__seed0.json").read_text())
    assert record["config"]["started_at"] >= released_at


def test_arguments_are_validated(tmp_path: Path) -> None:
    assert parse_seeds("0,1,2", (9,)) == (0, 1, 2)
    assert parse_seeds("3", (9,)) == (0, 1, 2)
    assert parse_seeds("5,", (9,)) == (5,)
    assert parse_seeds(None, (9,)) == (9,)
    for bad in ("0,0", "-1,", "x", "0"):
        with pytest.raises(ValueError, match="seeds"):
            parse_seeds(bad, (0,))
    with pytest.raises(ValueError, match="unknown method"):
        run_benchmark(RunAllConfig(methods="nope", out=tmp_path, progress=False), preset=TINY)
    with pytest.raises(ValueError, match="named once"):
        run_benchmark(RunAllConfig(methods="sb3_dqn_privileged,sb3_dqn_privileged", out=tmp_path, progress=False),
                      preset=TINY)
    with pytest.raises(ValueError, match="unknown env"):
        run_benchmark(RunAllConfig(env="maze", out=tmp_path, progress=False), preset=TINY)
    with pytest.raises(ValueError, match="workers"):
        run_benchmark(RunAllConfig(workers=0, out=tmp_path, progress=False), preset=TINY)
    with pytest.raises(ValueError, match="already registered"):
        register_method("sb3_ppo_privileged", _fake_method)
    with pytest.raises(ValueError, match="train_episodes"):
        dataclasses.replace(TINY, train_episodes=0)
    assert set(PRESETS) == {"smoke", "default", "paper"}
    assert set(SB3_METHODS) <= set(METHOD_REGISTRY)


GRID_METHODS = ("internal_rl", "raw_action_rl", "compile_rl", "internal_rl_beta1", "internal_rl_cotrained")


def test_grid_methods_share_one_base_model_and_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The paper's methods run through the harness on shared artifacts built once (SPEC A§7.1, B6)."""
    config = RunAllConfig(env="grid", methods=",".join(GRID_METHODS), seeds="0,", out=tmp_path, progress=False)
    first = run_benchmark(config, preset=TINY)
    assert sorted(first["ran"]) == sorted(("grid", method, 0) for method in GRID_METHODS)
    shared = tmp_path / "work" / "grid" / "_shared"
    assert (shared / "base_model" / "model.pt").is_file()
    for variant in ("standard", "beta1", "cotrained"):
        assert (shared / f"metacontroller_{variant}" / "metacontroller.pt").is_file()
    assert (shared / "compile" / "compile.pt").is_file()
    base_mtime = (shared / "base_model" / "model.pt").stat().st_mtime_ns
    for method in GRID_METHODS:
        record = json.loads((tmp_path / "runs" / f"grid__{method}__seed0.json").read_text())
        assert record["privileged"] is False
        # each point sits at what its policy had learned from: the untrained batch at 0, and the
        # last batch brings training to the budget
        assert record["curve"][0]["episodes"] == 0 == record["curve"][0]["env_steps"]
        assert record["curve"][-1]["episodes"] + record["config"]["batch_episodes"] >= TINY.train_episodes
        assert 0.0 <= record["final_success_rate"] <= 1.0
        # wall_s is the run's own training time; getting the shared artifacts is kept apart
        assert record["wall_s"] == record["curve"][-1]["wall_s"] > 0
        assert record["config"]["shared_setup_s"] >= 0
        assert "base_model" in record["config"]["shared_build_s"]  # read from the artifact's metrics.csv
    builder = json.loads((tmp_path / "runs" / f"grid__{first['ran'][0][1]}__seed0.json").read_text())
    assert builder["config"]["shared_setup_s"] > builder["wall_s"]  # the first run pretrained the base model
    beta1 = json.loads((tmp_path / "runs" / "grid__internal_rl_beta1__seed0.json").read_text())
    assert beta1["config"]["variant"] == "beta1"
    assert sorted(beta1["config"]["shared_build_s"]) == ["base_model", "metacontroller_beta1"]
    summary = (tmp_path / "summary.md").read_text()
    assert "| internal_rl |" in summary and "| compile_rl |" in summary
    assert "`compile` " in summary and "`metacontroller_cotrained` " in summary  # the shared-artifact line

    second = run_benchmark(config, preset=TINY)
    assert second["ran"] == [] and len(second["skipped"]) == len(GRID_METHODS)
    assert (shared / "base_model" / "model.pt").stat().st_mtime_ns == base_mtime
    # another preset's budgets must not be skipped into (or overwrite) this folder's table
    with pytest.raises(ValueError, match="is a run of preset 'smoke', not 'other'"):
        run_benchmark(config, preset=dataclasses.replace(TINY, name="other"))
    third = run_benchmark(config, preset=TINY)  # the refusal released every run lock
    assert third["ran"] == [] and third["busy"] == []
    # nor another version of this preset: a trainer preset of its pipeline changed since (as the grid
    # `default` backbone did in session 33), or a record written before records carried a fingerprint
    import agents.base_model_study as study_module

    smoke_study = study_module.STUDY_PRESETS["smoke"]
    changed = dataclasses.replace(smoke_study, data=dataclasses.replace(smoke_study.data, d_epsilon=0.1))
    with monkeypatch.context() as patch:
        patch.setitem(study_module.STUDY_PRESETS, "smoke", changed)
        with pytest.raises(ValueError, match=r"grid__\w+__seed0\.json was made with preset_fingerprint .* have changed since"):
            run_benchmark(config, preset=TINY)
    record_path = tmp_path / "runs" / "grid__internal_rl__seed0.json"
    record = json.loads(record_path.read_text())
    del record["preset_fingerprint"]
    record_path.write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"grid__internal_rl__seed0\.json was made before run records carried"):
        run_benchmark(dataclasses.replace(config, methods="internal_rl"), preset=TINY)


def test_base_model_and_dstar_go_together(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--base-model and --dstar"):
        run_benchmark(RunAllConfig(methods="internal_rl", base_model=tmp_path / "m.pt", out=tmp_path, progress=False),
                      preset=TINY)


ANT_METHODS = ("expert", "internal_rl", "raw_action_rl", "sb3_ppo_raw", "sb3_sac_privileged")


def test_ant_rows_come_from_the_same_harness(tmp_path: Path) -> None:
    """`run_all --env ant`: the ant pipeline (Hawk SSM, linear metacontroller) and its SB3 baselines (issue #7)."""
    from benchmarks.run_all import METHOD_ENVS

    config = RunAllConfig(env="ant", methods=",".join(ANT_METHODS), seeds="0,", out=tmp_path, progress=False)
    result = run_benchmark(config, preset=PRESETS["smoke"])
    assert sorted(result["ran"]) == sorted(("ant", method, 0) for method in ANT_METHODS)
    shared = tmp_path / "work" / "ant" / "_shared"
    assert (shared / "base_model" / "model.pt").is_file() and (shared / "metacontroller_standard").is_dir()
    for method in ANT_METHODS[1:]:
        record = json.loads((tmp_path / "runs" / f"ant__{method}__seed0.json").read_text())
        last_batch = record["config"].get("batch_episodes", 0)  # pipeline points lag their last batch
        assert record["curve"][0]["episodes"] == 0
        assert record["curve"][-1]["episodes"] + last_batch >= PRESETS["smoke"].for_env("ant").train_episodes
    expert = json.loads((tmp_path / "runs" / "ant__expert__seed0.json").read_text())
    assert expert["privileged"] and expert["config"]["eval_episodes"] == 4 * PRESETS["smoke"].for_env("ant").eval_episodes
    summary = (tmp_path / "summary.md").read_text()
    assert "| sb3_sac_privileged |" in summary
    if expert["final_success_rate"] > 0:
        assert "÷ expert" in summary
    assert "sb3_dqn_privileged" not in METHOD_ENVS or "ant" not in METHOD_ENVS["sb3_dqn_privileged"]
    with pytest.raises(ValueError, match="do not run on env 'ant'"):
        run_benchmark(RunAllConfig(env="ant", methods="sb3_dqn_privileged", out=tmp_path, progress=False),
                      preset=PRESETS["smoke"])


def test_preset_fingerprint_covers_budgets_trainer_presets_and_sb3_hyperparameters(monkeypatch) -> None:
    """The fingerprint a run record carries changes with anything that decides the run, per env,
    and is the same for the same configs (run_all.preset_fingerprint)."""
    import agents.baselines.sb3_agents as sb3_agents
    import agents.train_metacontroller as train_metacontroller
    from benchmarks.run_all import preset_fingerprint

    grid, ant = preset_fingerprint(TINY, "grid"), preset_fingerprint(TINY, "ant")
    assert len(grid) == 64 and grid != ant and preset_fingerprint(dataclasses.replace(TINY), "grid") == grid
    assert preset_fingerprint(dataclasses.replace(TINY, eval_episodes=5), "grid") != grid
    # an ant-only budget leaves the grid's runs valid
    ant_budget = {"ant": {**TINY.env_overrides["ant"], "eval_episodes": 3}}
    assert preset_fingerprint(dataclasses.replace(TINY, env_overrides=ant_budget), "grid") == grid
    assert preset_fingerprint(dataclasses.replace(TINY, env_overrides=ant_budget), "ant") != ant
    smoke_mc = train_metacontroller.METACONTROLLER_PRESETS["smoke"]
    with monkeypatch.context() as patch:
        patch.setitem(train_metacontroller.METACONTROLLER_PRESETS, "smoke",
                      dataclasses.replace(smoke_mc, train_steps=smoke_mc.train_steps + 1))
        assert preset_fingerprint(TINY, "grid") != grid and preset_fingerprint(TINY, "ant") == ant
    with monkeypatch.context() as patch:
        patch.setitem(sb3_agents.HYPERPARAMS["dqn"], "HierGrid-v0",
                      {**sb3_agents.HYPERPARAMS["dqn"]["HierGrid-v0"], "gamma": 0.98})
        assert preset_fingerprint(TINY, "grid") != grid and preset_fingerprint(TINY, "ant") == ant
    # a config value without a stable JSON form is refused rather than hashed by its address
    with pytest.raises(TypeError, match="cannot hash a object"):
        preset_fingerprint(dataclasses.replace(TINY, method_options={"x": {"y": object()}}), "grid")
    # a preset with no trainer presets of its name (SB3 / registered methods only) still has one
    assert len(preset_fingerprint(dataclasses.replace(TINY, name="other"), "grid")) == 64
