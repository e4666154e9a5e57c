"""End-to-end smoke runs of the study commands: every stage wires up and the report parses (SPEC B5)."""

import dataclasses
import json

import pytest

from agents.base_model_study import ANT_STUDY_PRESETS, STUDY_PRESETS, run_study


@pytest.fixture(scope="module")
def base_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("base_study")
    config = dataclasses.replace(STUDY_PRESETS["smoke"], controller_layers=(0, 1), eval_episodes=16)
    results = run_study(config, root / "run", root / "out", progress=False)
    return root, config, results


def test_base_model_study_writes_a_parsable_report(base_study):
    root, config, results = base_study
    out = root / "out"
    for name in ("report.md", "results.json", "probes.png", "controllers.png", "pretraining.png"):
        assert (out / name).stat().st_size > 0
    saved = json.loads((out / "results.json").read_text())
    assert set(saved["controllers"]) == {"0", "1"}
    assert all(row["episodes"] == 16 for row in saved["controllers"].values())
    assert set(saved["probes"]) == {str(step) for step in config.pretrain.snapshot_steps}
    assert len(saved["probes"]["60"]["val_accuracy"]) == config.pretrain.model.n_layers + 1
    report = (out / "report.md").read_text()
    assert "| 1 (mid) |" in report and "HierGrid-v0" in report
    # the 2 x 2 composition table: mid-depth controllers on four task pools, same episode count
    assert len(saved["composition"]) == 4 and all(row["episodes"] == 16 for row in saved["composition"].values())
    assert [row["task_colors"] for row in saved["composition"].values()] == [6, 6, 12, 12]
    assert "Where composition breaks" in report and "unseen transitions, 3 subgoals" in report
    assert all(sum(row["colors_visited_counts"]) == 16 for row in saved["composition"].values())
    assert "| k = 6 |" in report
    for row in [*saved["controllers"].values(), *saved["unsteered"].values()]:  # every episode has one ending
        assert sum(row["endings"].values()) == row["episodes"]
        assert row["endings"]["success"] == round(row["success_rate"] * row["episodes"])
    assert "unsuccessful endings" in report
    # what the numbers were computed from and on: the data files' digests and the CPU
    from hier_envs.datasets import load_dataset

    for key, name in (("D", "data_D.npz"), ("Dstar", "data_Dstar.npz")):
        stored = load_dataset(root / "run" / name)
        assert saved["datasets"][key]["sha256"] == stored.sha256
        assert saved["datasets"][key]["episodes"] == stored.n_episodes and saved["datasets"][key]["steps"] == stored.n_steps
    assert saved["datasets"]["D"]["sha256"] != saved["datasets"]["Dstar"]["sha256"]
    assert saved["machine"]["cpu_count"] >= 1 and saved["machine"]["torch_cpu_capability"]


def test_ant_base_model_study_runs_end_to_end(tmp_path):
    config = ANT_STUDY_PRESETS["smoke"]
    results = run_study(config, tmp_path / "run", tmp_path / "out", progress=False)
    assert results["env"] == "ant" and results["controlled_layer"] == 1
    assert set(results["controllers"]) == {"0", "1"} and 0.0 <= results["expert"]["success_rate"] <= 1.0
    assert results["composition"] is None  # grid-only table
    report = (tmp_path / "out" / "report.md").read_text()
    assert "# Ant base model study" in report and "HierAnt-v0" in report and "(of 4)" in report


def test_base_model_study_resumes_from_its_stages(base_study, monkeypatch):
    root, config, results = base_study
    import agents.base_model_study as study

    def fail(*args, **kwargs):
        raise AssertionError("a finished stage was run again")

    monkeypatch.setattr(study, "train_subgoal_controllers", fail)
    monkeypatch.setattr(study, "probe_model", fail)
    monkeypatch.setattr(study, "composition_breakdown", fail)
    again = run_study(config, root / "run", root / "out2", progress=False)
    assert again["controllers"] == results["controllers"] and again["composition"] == results["composition"]



@pytest.mark.parametrize("change, stage", [
    ({"eval_episodes": 8}, "unsteered.json"),  # the unsteered rows would keep their 16 episodes
    ({"eval_greedy": True}, "unsteered.json"),
])
def test_a_rerun_with_other_settings_refuses_the_old_stages(base_study, change, stage):
    """Each stage records what it was measured with: a rerun with other evaluation settings is
    refused, naming the stage file, instead of reporting the old rows under the new config."""
    from agents.checkpoints import CheckpointError

    root, config, _ = base_study
    with pytest.raises(CheckpointError, match=stage):
        run_study(dataclasses.replace(config, **change), root / "run", root / "out3", progress=False)


def test_controller_form_is_a_stage_setting(base_study, monkeypatch):
    """Controllers of another form are refitted, never reported as the stored ones; lookup-form
    records keep the settings they had before the form field existed, so older run dirs are reused;
    ``--controller-form`` reaches both studies' configs."""
    from agents import base_model_study
    from agents.checkpoints import CheckpointError
    from agents.internal_rl_study import parse_study_args

    root, config, _ = base_study
    assert config.controllers.form == "hypernetwork"
    lookup = dataclasses.replace(config, controllers=dataclasses.replace(config.controllers, form="lookup"))
    with pytest.raises(CheckpointError, match="controllers.json"):
        run_study(lookup, root / "run", root / "out4", progress=False)
    assert set(config.controllers.settings()) - set(lookup.controllers.settings()) == {"form", "decoder_hidden", "init_scale"}

    seen = []

    def capture(study_config, *args, **kwargs):
        seen.append(study_config)
        raise SystemExit(0)

    monkeypatch.setattr(base_model_study, "run_study", capture)
    with pytest.raises(SystemExit):
        base_model_study.main(["--preset", "smoke", "--controller-form", "lookup"])
    assert seen[0].controllers == dataclasses.replace(STUDY_PRESETS["smoke"].controllers, form="lookup")
    _, irl_config = parse_study_args(["--base-model", "m.pt", "--dstar", "d.npz", "--controller-form", "lookup"])
    assert irl_config.reference_controllers.form == "lookup"


def test_bad_controller_layers_and_the_paper_data_preset(tmp_path):
    """Controller layers outside 0..L are refused before anything runs; the ``paper`` preset's D
    has the paper's ε = 0 (SPEC A§2.3)."""
    from agents.base_model_study import DATA_PRESETS

    with pytest.raises(ValueError, match=r"controller_layers \[99\] are outside 0..2"):
        run_study(dataclasses.replace(STUDY_PRESETS["smoke"], controller_layers=(0, 99)), tmp_path / "run",
                  tmp_path / "out", progress=False)
    assert not (tmp_path / "run").exists()
    assert DATA_PRESETS["paper"].d_epsilon == 0.0


def test_grid_internal_rl_study_runs_reports_references_and_resumes(base_study, monkeypatch):
    """Sweep → metacontroller → switching → internal RL → distortion references, smoke scale, on the
    base-model study's model and D*; a second run reuses every cached stage."""
    from agents.internal_rl_study import INTERNAL_RL_STUDY_PRESETS, run_internal_rl_study

    root, _, _ = base_study
    config = dataclasses.replace(INTERNAL_RL_STUDY_PRESETS["smoke"], rl_seeds=(0,), sweep_cotrain=False)
    args = (config, root / "run" / "base_model" / "model.pt", root / "run" / "data_Dstar.npz", root / "irl_run")
    results = run_internal_rl_study(*args, root / "irl_out", progress=False)
    from hier_envs.datasets import load_dataset

    assert results["dstar"]["sha256"] == load_dataset(args[2]).sha256 and results["machine"]["platform"]
    references = results["distortion_references"]
    assert references["per_subgoal"]["controllers"] == 4
    assert references["per_task"]["controllers"] == len(set(_distinct_tasks(root)))  # train and held-out D* tasks
    assert all(references[key]["action_nll"] > 0 for key in ("per_subgoal", "per_task")) and references["unsteered"] > 0
    report = (root / "irl_out" / "report.md").read_text()
    assert "## Distortion references" in report and "| per task, held constant |" in report
    assert (root / "irl_out" / "rate_distortion.png").stat().st_size > 0

    import agents.internal_rl_study as study

    def fail(*args, **kwargs):
        raise AssertionError("a finished stage was run again")

    monkeypatch.setattr(study, "train_subgoal_controllers", fail)
    again = run_internal_rl_study(*args, root / "irl_out2", progress=False)
    assert again["distortion_references"] == references

    from agents.checkpoints import CheckpointError

    slower_switch = dataclasses.replace(config, metacontroller=dataclasses.replace(
        config.metacontroller, switch_learning_rate_scale=0.5))
    with pytest.raises(CheckpointError, match="rate_distortion.json"):  # not the cached sweep of another config
        run_internal_rl_study(slower_switch, *args[1:], root / "irl_out3", progress=False)


def test_rate_distortion_sweep_runs_at_constant_alpha():
    """The sweep reuses the main metacontroller's settings but never its early-α phase or α ramp
    (Fig. 7 is a constant-α sweep; a 4,250-step phase would cover a whole 1,500-step sweep run)."""
    from agents.internal_rl_study import INTERNAL_RL_STUDY_PRESETS, sweep_metacontroller_config
    from agents.train_metacontroller import kl_weight_at

    main = dataclasses.replace(INTERNAL_RL_STUDY_PRESETS["default"].metacontroller, train_steps=5000,
                               early_kl_weight=0.01, early_kl_steps=4250, kl_warmup_steps=1000,
                               switch_learning_rate_scale=0.1)
    run = sweep_metacontroller_config(main, 0.3, 1500, cotrain=True)
    assert run.early_kl_weight is None and run.early_kl_steps == 0 and run.kl_warmup_steps == 0
    assert kl_weight_at(0, run) == 0.3 and run.train_steps == 1500 and run.cotrain
    assert run.switch_learning_rate_scale == 0.1


def test_study_cli_needs_both_early_kl_options(capsys):
    from agents.internal_rl_study import main

    with pytest.raises(SystemExit):
        main(["--base-model", "missing.pt", "--dstar", "missing.npz", "--early-kl-weight", "0.01"])
    assert "--early-kl-weight and --early-kl-steps go together" in capsys.readouterr().err


def test_default_grid_metacontroller_preset_is_the_switching_recipe():
    """`default` = slow switching unit, α = 0.01 until step 2,000, then a linear rise to α = 0.3 by
    step 3,000, 3,500 steps in all (the measured recipe, results/metacontroller_kl_schedule); `paper`
    keeps Table A9's single rate and constant α."""
    from agents.train_metacontroller import METACONTROLLER_PRESETS, kl_weight_at

    default, paper = METACONTROLLER_PRESETS["default"], METACONTROLLER_PRESETS["paper"]
    steps = (0, 1999, 2000, 2500, 3000, default.train_steps - 1)
    assert [kl_weight_at(step, default) for step in steps] == pytest.approx([0.01, 0.01, 0.01, 0.155, 0.3, 0.3])
    assert default.switch_learning_rate_scale == 0.1 and default.train_steps == 3500
    assert {kl_weight_at(step, paper) for step in (0, 4250, 63_999)} == {0.1} and paper.switch_learning_rate_scale == 1.0


def test_study_cli_constant_kl_drops_the_early_phase_and_ramp(capsys):
    from agents.internal_rl_study import parse_study_args
    from agents.train_metacontroller import kl_weight_at

    files = ["--base-model", "missing.pt", "--dstar", "missing.npz"]
    _, config = parse_study_args([*files, "--constant-kl", "--metacontroller-steps", "1500"])
    main = config.metacontroller
    assert (main.early_kl_weight, main.early_kl_steps, main.kl_warmup_steps, main.train_steps) == (None, 0, 0, 1500)
    assert kl_weight_at(0, main) == kl_weight_at(1499, main) == 0.3
    with pytest.raises(SystemExit):  # the preset's 2,000-step phase would cover the whole run
        parse_study_args([*files, "--metacontroller-steps", "1500"])
    assert "early_kl_steps (2000) must be below train_steps (1500)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_study_args([*files, "--constant-kl", "--early-kl-weight", "0.01", "--early-kl-steps", "100"])
    assert "--constant-kl drops the early-α phase" in capsys.readouterr().err


def test_stage_cache_refuses_a_stage_made_with_other_settings(tmp_path):
    from agents.base_model_study import StageCache
    from agents.checkpoints import CheckpointError

    stages = StageCache(tmp_path)
    assert stages.get("sweep", {"lr": 1}) is None
    stages.put("sweep", {"f1": 0.5}, {"lr": 1, "layers": (3,)})
    assert stages.get("sweep", {"lr": 1, "layers": (3,)}) == {"f1": 0.5}
    with pytest.raises(CheckpointError, match="sweep.json"):
        stages.get("sweep", {"lr": 2, "layers": (3,)})
    stages.put("plain", [1, 2])  # stages without settings keep their plain format
    assert stages.get("plain") == [1, 2]
    with pytest.raises(CheckpointError, match="plain.json"):
        stages.get("plain", {"lr": 1})


def _distinct_tasks(root):
    from hier_envs.datasets import load_dataset

    held = load_dataset(root / "irl_run" / "data_Dstar_heldout.npz")
    return [tuple(t) for t in load_dataset(root / "run" / "data_Dstar.npz").episode_tasks] + [tuple(t) for t in held.episode_tasks]


def test_ant_internal_rl_study_runs_end_to_end(tmp_path):
    """Metacontroller (full linear controller) → switching (±5) → internal RL on HierAnt, smoke scale."""
    from agents.base_model_study import ANT_STUDY_PRESETS, ensure_ant_datasets
    from agents.internal_rl_study import ANT_INTERNAL_RL_STUDY_PRESETS, run_internal_rl_study
    from agents.pretrain import pretrain

    study = ANT_STUDY_PRESETS["smoke"]
    d_data, _ = ensure_ant_datasets(study.data, tmp_path / "data", progress=False)
    model_path = pretrain(study.pretrain, d_data, tmp_path / "base", progress=False)
    config = ANT_INTERNAL_RL_STUDY_PRESETS["smoke"]
    results = run_internal_rl_study(config, model_path, tmp_path / "data" / "data_Dstar.npz", tmp_path / "run",
                                    tmp_path / "out", progress=False)
    assert results["switching"]["tolerance"] == 5 and 0.0 <= results["switching"]["f1"] <= 1.0
    assert set(results["internal_rl"]) == {"0"} and results["expert"]["episodes"] == 2
    report = (tmp_path / "out" / "report.md").read_text()
    assert "# Internal RL on the ant (HierAnt-v0)" in report and "recurrent state" in report


def test_study_refuses_a_run_dir_with_other_datasets(tmp_path):
    """A run dir holds one data configuration: D generated with other settings is refused, naming the file."""
    from agents.base_model_study import DATA_PRESETS, ensure_grid_datasets

    config = dataclasses.replace(DATA_PRESETS["smoke"], d_episodes=8, dstar_episodes=4)
    d_data, dstar_data = ensure_grid_datasets(config, tmp_path, progress=False)
    assert (d_data.n_episodes, dstar_data.n_episodes) == (8, 4)
    with pytest.raises(ValueError, match="data_D.npz was generated with"):
        ensure_grid_datasets(dataclasses.replace(config, d_epsilon=0.1), tmp_path, progress=False)


def test_study_without_probe_snapshots_is_refused_before_it_runs(tmp_path):
    """Probes read the pretraining snapshots and the report tabulates them: a config without any
    used to train every stage and then fail in ``write_report``; now nothing runs."""
    config = dataclasses.replace(STUDY_PRESETS["smoke"],
                                 pretrain=dataclasses.replace(STUDY_PRESETS["smoke"].pretrain, snapshot_steps=()))
    with pytest.raises(ValueError, match=r"snapshot_steps is empty.*train_steps=60"):
        run_study(config, tmp_path / "run", tmp_path / "out", progress=False)
    assert not (tmp_path / "run").exists() and not (tmp_path / "out").exists()


def test_with_pretrain_steps_overrides_length_and_snapshots():
    """``--pretrain-steps`` (Fig. A2 backbone-length studies): the length joins the probe snapshots."""
    from agents.base_model_study import with_pretrain_steps

    config = with_pretrain_steps(STUDY_PRESETS["smoke"], 40)
    assert config.pretrain.train_steps == 40 and config.pretrain.snapshot_steps == (20, 40)
    assert with_pretrain_steps(STUDY_PRESETS["smoke"], 90).pretrain.snapshot_steps == (20, 60, 90)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="pretraining steps"):
            with_pretrain_steps(STUDY_PRESETS["smoke"], bad)


@pytest.mark.parametrize("helper, field, value, bad_values, message", [
    ("with_pretrain_weight_decay", "weight_decay", 0.4, (-0.1, float("nan"), "0.4", True), r"PretrainConfig\.weight_decay"),
    ("with_pretrain_obs_loss_weight", "obs_loss_weight", 0.1, (-0.1, float("nan"), "0.1", None),
     r"PretrainConfig\.obs_loss_weight"),
])
def test_pretrain_overrides_change_only_their_field(helper, field, value, bad_values, message):
    """``--pretrain-weight-decay`` / ``--pretrain-obs-loss-weight``: only that pretraining field
    changes; bad values are refused with a message naming it."""
    import agents.base_model_study as study

    base = STUDY_PRESETS["smoke"]
    config = getattr(study, helper)(base, value)
    assert getattr(config.pretrain, field) == value
    assert dataclasses.replace(config.pretrain, **{field: getattr(base.pretrain, field)}) == base.pretrain
    assert config.controllers == base.controllers
    for bad in bad_values:
        with pytest.raises((ValueError, TypeError), match=message):
            getattr(study, helper)(base, bad)
    assert isinstance(getattr(getattr(study, helper)(base, 1).pretrain, field), float)


def test_pretrain_batch_size_override_changes_only_the_batch(capsys):
    """``--pretrain-batch-size``: the paper's 1,024 for a GPU run; a bad value is a CLI error."""
    from agents.base_model_study import main, with_pretrain_batch_size

    base = STUDY_PRESETS["smoke"]
    config = with_pretrain_batch_size(base, 1024)
    assert config.pretrain == dataclasses.replace(base.pretrain, batch_size=1024) and config.data == base.data
    for bad in (0, -3, 2.5, "64"):
        with pytest.raises((ValueError, TypeError), match=r"PretrainConfig\.batch_size"):
            with_pretrain_batch_size(base, bad)
    with pytest.raises(SystemExit):
        main(["--preset", "smoke", "--pretrain-batch-size", "0"])
    assert "PretrainConfig.batch_size" in capsys.readouterr().err


def test_pretrain_seed_override_changes_only_the_pretraining_seed(capsys):
    """``--pretrain-seed``: another backbone of the preset on the same D and D* (the paper's 10
    base models); a negative, fractional or non-int seed is refused naming the field."""
    from agents.base_model_study import main, with_pretrain_seed

    base = STUDY_PRESETS["smoke"]
    config = with_pretrain_seed(base, 7)
    assert config.pretrain == dataclasses.replace(base.pretrain, seed=7)
    assert config.data == base.data and config.controllers == base.controllers and config.probes == base.probes
    for bad in (-1, 2.5, "3", True, None):
        with pytest.raises(ValueError, match=r"PretrainConfig\.seed must be a non-negative int"):
            with_pretrain_seed(base, bad)
    with pytest.raises(SystemExit):
        main(["--preset", "smoke", "--pretrain-seed", "-2"])
    assert "PretrainConfig.seed" in capsys.readouterr().err


def test_data_epsilon_override_changes_only_d_and_is_refused_for_the_ant(capsys):
    """``--data-epsilon`` (Fig. A2's expert-noise axis; the paper's default ε = 0): only D's ε
    changes, D* stays at ε = 0 by construction; a bad value or the ant study is refused."""
    from agents.base_model_study import main, with_data_epsilon

    base = STUDY_PRESETS["smoke"]
    assert base.data.d_epsilon == 0.0 and STUDY_PRESETS["default"].data.d_epsilon == 0.0  # SPEC A§2.3
    config = with_data_epsilon(base, 1)
    assert config.data == dataclasses.replace(base.data, d_epsilon=1.0) and isinstance(config.data.d_epsilon, float)
    assert dataclasses.replace(config, data=base.data) == base
    for bad in (-0.1, 1.5, float("nan"), "0", True, None):
        with pytest.raises((ValueError, TypeError), match=r"GridDataConfig\.d_epsilon"):
            with_data_epsilon(base, bad)
    with pytest.raises(ValueError, match=r"GridDataConfig\.d_epsilon must be in \[0, 1\]"):
        dataclasses.replace(base.data, d_epsilon=1.5)  # the config itself refuses it, not only the CLI helper
    with pytest.raises(ValueError, match="grid setting"):
        with_data_epsilon(ANT_STUDY_PRESETS["smoke"], 0.0)
    with pytest.raises(SystemExit):
        main(["--env", "ant", "--preset", "smoke", "--data-epsilon", "0"])
    assert "grid setting" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--preset", "smoke", "--data-epsilon", "2"])
    assert "GridDataConfig.d_epsilon" in capsys.readouterr().err


def test_subgoal_completion_rates():
    from agents.base_model_study import subgoal_completion_rates

    # 10 episodes of a 3-subgoal task: 2 fail at colour 0, 1 mid-subgoal, 3 at the 2nd start, 4 succeed
    counts = [2, 1, 3, 0, 0, 0, 4]
    assert subgoal_completion_rates(counts) == [7 / 10, 4 / 7, 1.0]
    assert subgoal_completion_rates([5, 0, 0, 0, 0]) == [0.0, None]


def test_distortion_references_reuse_the_base_model_studys_controllers(base_study, monkeypatch):
    """The per-subgoal reference loads the study's fitted controllers (same config, layer and base
    model) instead of refitting them; only the per-task ones are fitted."""
    import agents.internal_rl_study as study
    from agents.checkpoints import CheckpointError
    from agents.controllers import controlled_action_nll, load_subgoal_controllers
    from agents.pretrain import load_base_model
    from hier_envs.datasets import load_dataset

    root, config, _ = base_study
    model = load_base_model(root / "run" / "base_model" / "model.pt")
    dstar = load_dataset(root / "run" / "data_Dstar.npz")
    layer = model.config.controlled_layer
    path = root / "run" / "controllers" / f"layer_{layer}.pt"
    fitted_counts = []
    real_fit = study.train_subgoal_controllers

    def counting_fit(base_model, dataset, fit_layer, fit_config, progress=True, device="cpu"):
        fitted_counts.append(fit_config.n_subgoals)
        return real_fit(base_model, dataset, fit_layer, fit_config, progress=progress, device=device)

    monkeypatch.setattr(study, "train_subgoal_controllers", counting_fit)
    references = study.distortion_references(model, dstar, dstar, layer, config.controllers, progress=False,
                                             subgoal_controllers_path=path)
    assert fitted_counts == [references["per_task"]["controllers"]]  # the per-subgoal ones were not refitted
    assert references["per_subgoal"]["source"] == str(path) and references["per_subgoal"]["final_train_nll"] is None
    loaded = load_subgoal_controllers(path, model.config.width)
    assert references["per_subgoal"]["action_nll"] == controlled_action_nll(model, loaded, dstar, layer)
    other_layer = root / "run" / "controllers" / "layer_0.pt"
    with pytest.raises(CheckpointError, match="layer_0.pt"):
        study.distortion_references(model, dstar, dstar, layer, config.controllers, progress=False,
                                    subgoal_controllers_path=other_layer)
