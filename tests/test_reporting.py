"""benchmarks.reporting on a hand-made results folder (SPEC B6)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from benchmarks.reporting import (
    NOT_REACHED,
    SUMMARY_COLUMNS,
    load_runs,
    run_filename,
    summarize,
    validate_run_record,
    write_manifest,
    write_report,
)


def make_run(method: str, seed: int, successes: list[float], privileged: bool = False, env: str = "grid") -> dict:
    episodes = [100 * i for i in range(len(successes))]
    return {
        "schema_version": 1,
        "method": method,
        "env": env,
        "seed": seed,
        "privileged": privileged,
        "curve": [
            {"episodes": e, "env_steps": 10 * e, "success_rate": s, "wall_s": 0.5 * i}
            for i, (e, s) in enumerate(zip(episodes, successes))
        ],
        "final_success_rate": successes[-1],
        "wall_s": 0.5 * (len(successes) - 1),
        "config": {"eval_episodes": 50},
    }


@pytest.fixture()
def results_dir(tmp_path: Path) -> Path:
    runs = [
        # internal_rl: seed 0 reaches 50% at 200 and 80% at 300; seed 1 at 100 / 400; seed 2 never 80%.
        make_run("internal_rl", 0, [0.0, 0.3, 0.6, 0.9, 0.9]),
        make_run("internal_rl", 1, [0.1, 0.5, 0.7, 0.7, 0.85]),
        make_run("internal_rl", 2, [0.0, 0.2, 0.4, 0.55, 0.6]),
        make_run("sb3_recurrent_ppo", 0, [0.0, 0.0, 0.0, 0.0, 0.0]),
        make_run("sb3_recurrent_ppo", 1, [0.0, 0.0, 0.0, 0.0, 0.1]),
        make_run("sb3_ppo_privileged", 0, [0.0, 0.2, 0.9, 1.0, 1.0], privileged=True),
        make_run("sb3_ppo_privileged", 1, [0.0, 0.1, 0.95, 1.0, 1.0], privileged=True),
        make_run("sb3_recurrent_ppo", 0, [0.0, 0.5], env="ant"),
    ]
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    for run in runs:
        (runs_dir / run_filename(run["env"], run["method"], run["seed"])).write_text(json.dumps(run))
    return tmp_path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_summary_csv_columns_and_values(results_dir: Path) -> None:
    report = write_report(results_dir, reps=300)
    rows = read_csv(results_dir / "summary.csv")
    assert report["summary_csv"] == results_dir / "summary.csv"
    assert list(rows[0]) == list(SUMMARY_COLUMNS)
    by_key = {(r["env"], r["method"]): r for r in rows}
    assert sorted(by_key) == [
        ("ant", "sb3_recurrent_ppo"),
        ("grid", "internal_rl"),
        ("grid", "sb3_ppo_privileged"),
        ("grid", "sb3_recurrent_ppo"),
    ]
    internal = by_key[("grid", "internal_rl")]
    assert internal["n_seeds"] == "3" and internal["seeds"] == "0 1 2"
    assert internal["privileged"] == "False"
    assert float(internal["final_success_median"]) == pytest.approx(0.85)
    assert float(internal["final_success_iqm"]) == pytest.approx((0.9 + 0.85 + 0.6) / 3)  # 3 scores: no trim
    assert float(internal["final_success_iqm_ci_low"]) <= float(internal["final_success_iqm"])
    assert float(internal["final_success_iqm_ci_high"]) >= float(internal["final_success_iqm"])
    assert float(internal["episodes_to_50_median"]) == 200.0  # seeds reach at 200, 100, 300
    assert float(internal["episodes_to_80_median"]) == 400.0  # 300, 400, never -> median 400
    assert internal["seeds_reached_80"] == "2"
    assert internal["poi_reference"] == "" and internal["poi_reference_over_method"] == ""
    recurrent = by_key[("grid", "sb3_recurrent_ppo")]
    assert recurrent["episodes_to_50_median"] == ""  # not reached
    assert recurrent["seeds_reached_50"] == "0"
    assert recurrent["poi_reference"] == "internal_rl"
    assert float(recurrent["poi_reference_over_method"]) == 1.0
    privileged = by_key[("grid", "sb3_ppo_privileged")]
    assert privileged["privileged"] == "True"
    assert float(privileged["poi_reference_over_method"]) == 0.0
    assert by_key[("ant", "sb3_recurrent_ppo")]["poi_reference"] == ""  # no internal_rl on ant
    assert float(by_key[("grid", "internal_rl")]["train_episodes_median"]) == 400.0


def test_wall_time_column_reads_the_last_curve_point(results_dir: Path) -> None:
    """A record whose ``wall_s`` counts a shared build (older pipeline records) does not inflate the
    table: the column is the training time at the last curve point."""
    for seed, last_point_s in ((0, 7.0), (1, 9.0)):  # seed 2 ends at 2.0 s
        path = results_dir / "runs" / run_filename("grid", "internal_rl", seed)
        record = json.loads(path.read_text())
        record["wall_s"] = 5000.0  # e.g. seeds that built or waited for the shared base model
        record["curve"][-1]["wall_s"] = last_point_s
        path.write_text(json.dumps(record))
    write_report(results_dir, reps=50)
    internal = {(r["env"], r["method"]): r for r in read_csv(results_dir / "summary.csv")}[("grid", "internal_rl")]
    assert float(internal["wall_s_median"]) == 7.0  # median of 7.0, 9.0, 2.0
    assert "`wall s` is each run's training time" in (results_dir / "summary.md").read_text()


def test_shared_artifact_times_are_listed_under_their_env(results_dir: Path) -> None:
    builds = {0: {"base_model": 4411.2, "metacontroller_standard": 901.0}, 1: {"base_model": 4452.0}}
    for seed, build_s in builds.items():
        path = results_dir / "runs" / run_filename("grid", "internal_rl", seed)
        record = json.loads(path.read_text())
        record["config"]["shared_build_s"] = build_s
        path.write_text(json.dumps(record))
    write_report(results_dir, reps=50)
    text = (results_dir / "summary.md").read_text()
    grid, ant = text.split("## grid")[1], text.split("## ant")[1].split("## grid")[0]
    assert "`base_model` 4,411–4,452 s, `metacontroller_standard` 901 s." in grid  # two builds: a range
    assert "Shared artifacts" not in ant  # no ant run records one


def test_summary_markdown_rows_and_caveats(results_dir: Path) -> None:
    write_report(results_dir, reps=200, preset_name="smoke")
    text = (results_dir / "summary.md").read_text()
    caveats = text.split("## grid")[0]
    assert "## Caveats" in caveats and "Smoke preset" in caveats and "privileged" in caveats
    grid_table = [line for line in text.split("## grid")[1].splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in grid_table[0].strip("|").split("|")]
    assert header[:3] == ["method", "observation", "seeds"]
    body = {cells[0]: cells for cells in ([c.strip() for c in line.strip("|").split("|")] for line in grid_table[1:])}
    assert body["internal_rl"][1:3] == ["faithful", "3"]
    assert body["sb3_ppo_privileged"][1] == "privileged"
    assert body["sb3_recurrent_ppo"][header.index("episodes to 50%")] == NOT_REACHED
    assert body["internal_rl"][header.index("episodes to 80%")] == "400"
    assert body["internal_rl > sb3_recurrent_ppo"][1].startswith("1.000 [")
    assert "![grid learning curves](learning_curves_grid.png)" in text


def test_learning_curve_pngs_exist(results_dir: Path) -> None:
    report = write_report(results_dir, reps=100)
    for name in ("learning_curves_grid.png", "learning_curves_grid_logx.png", "learning_curves_ant.png"):
        path = results_dir / name
        assert path in report["plots"]
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    assert not list(results_dir.glob(".*.tmp"))  # atomic writes leave no temporaries


def test_reference_method_absent_is_stated(results_dir: Path) -> None:
    write_report(results_dir, reference_method="compile", reps=50)
    assert "Reference method `compile` has no runs here" in (results_dir / "summary.md").read_text()
    assert all(row["poi_reference"] == "" for row in read_csv(results_dir / "summary.csv"))


def test_invalid_run_records_raise(results_dir: Path, tmp_path: Path) -> None:
    good = make_run("x", 0, [0.0, 0.5])
    assert validate_run_record(good)["method"] == "x"
    bad = dict(good, curve=[{"episodes": 5, "env_steps": 1, "success_rate": 1.5, "wall_s": 0.0}])
    with pytest.raises(ValueError, match="outside"):
        validate_run_record(bad)
    with pytest.raises(ValueError, match="'privileged'"):
        validate_run_record(dict(good, privileged="no"))
    with pytest.raises(ValueError, match="goes back"):
        validate_run_record(dict(good, curve=list(reversed(good["curve"]))))
    with pytest.raises(ValueError, match="not the last curve point"):  # a final success no curve shows
        validate_run_record(dict(good, final_success_rate=5.0))
    with pytest.raises(ValueError, match="negative env_steps"):
        validate_run_record(dict(good, curve=[{"episodes": 0, "env_steps": -1, "success_rate": 0.5, "wall_s": 0.0}]))
    with pytest.raises(ValueError, match="'wall_s' must be >= 0"):
        validate_run_record(dict(good, wall_s=-1.0))
    with pytest.raises(ValueError, match="several presets"):  # budgets differ: one table must not mix them
        summarize([dict(good, preset="smoke"), dict(good, seed=1, preset="default")])
    (results_dir / "runs" / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="broken.json"):
        load_runs(results_dir)
    with pytest.raises(ValueError, match="does not exist"):
        load_runs(tmp_path / "nowhere")


def test_write_manifest_records_command_versions_and_history(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, ["run_all.py", "--preset", "smoke"], {"name": "smoke", "episodes": 3}, 12.5)
    manifest = json.loads(path.read_text())
    assert manifest["command"] == "run_all.py --preset smoke"
    assert manifest["preset_name"] == "smoke" and manifest["preset"]["episodes"] == 3
    assert manifest["wall_s"] == 12.5
    for package in ("python", "torch", "numpy", "gymnasium", "stable-baselines3"):
        assert isinstance(manifest["versions"][package], str)
    assert set(manifest["git"]) == {"commit", "dirty"}
    write_manifest(tmp_path, "again", "default", 1.0)
    second = json.loads(path.read_text())
    assert second["command"] == "again" and second["preset_name"] == "default"
    assert [entry["command"] for entry in second["history"]] == ["run_all.py --preset smoke"]
    with pytest.raises(ValueError, match="wall_s"):
        write_manifest(tmp_path, "x", "smoke", -1.0)
