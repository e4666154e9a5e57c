"""The timing benchmarks behind committed results: each measures, reports its provenance,
writes its JSON and refuses bad settings (SPEC B5). Tiny settings: the numbers are not checked,
only that they are counted consistently."""

import json

import pytest
import torch

from agents.checkpoints import save_checkpoint
from agents.metacontroller import Metacontroller, MetacontrollerConfig
from agents.train_metacontroller import METACONTROLLER_KIND


def _assert_provenance(report):
    assert {"python", "numpy", "gymnasium"} <= set(report["versions"])
    assert report["machine"]["cpu_count"] >= 1 and report["command"]
    # the CPU a timing (and a seeded run's exact numbers) depends on (agents.training_utils.machine_description)
    assert {"cpu_model", "cpu_vector_flags", "usable_cpus", "torch_cpu_capability"} <= set(report["machine"])


def test_env_throughput_counts_every_env_step_and_writes_its_report(tmp_path):
    from benchmarks.env_throughput import ThroughputConfig, main

    out = tmp_path / "sub" / "throughput.json"
    report = main(ThroughputConfig(num_envs=8, seconds=0.05, out=out))
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    assert set(report["results"]) == {"single_wrapped", "single_unwrapped", "batched"}
    for row in report["results"].values():
        assert row["steps"] > 0 and row["steps_per_s"] == pytest.approx(row["steps"] / row["seconds"])
    assert report["results"]["batched"]["steps"] % 8 == 0  # whole batched calls of 8 envs
    assert report["config"]["num_envs"] == 8
    _assert_provenance(report)
    with pytest.raises(ValueError, match="num_envs"):
        main(ThroughputConfig(num_envs=0, seconds=0.05))


def test_ant_step_cost_reports_the_overhead_of_each_comparison(tmp_path):
    from benchmarks.ant_step_cost import AntStepCostConfig, main

    out = tmp_path / "ant.json"
    report = main(AntStepCostConfig(seconds=0.05, rounds=2, out=out))
    assert json.loads(out.read_text())["overhead_vs"] == report["overhead_vs"]
    assert all(len(row["rounds"]) == 2 for row in report["results"].values())
    hier = report["results"]["HierAnt"]["steps_per_s"]
    for label, overhead in report["overhead_vs"].items():
        assert overhead == pytest.approx(report["results"][label]["steps_per_s"] / hier - 1.0)
    assert report["within_budget"] == all(o <= report["max_overhead"] for o in report["overhead_vs"].values())
    assert "mujoco" in report["versions"]
    _assert_provenance(report)
    with pytest.raises(ValueError, match="rounds"):
        main(AntStepCostConfig(seconds=0.05, rounds=0))


@pytest.fixture
def smoke_metacontroller_path(smoke_base_model_path, tmp_path):
    """A random metacontroller for the smoke base model, in the format ``train_metacontroller`` writes."""
    from agents.pretrain import load_base_model

    torch.manual_seed(0)
    config = MetacontrollerConfig()
    base_config = load_base_model(smoke_base_model_path).config
    metacontroller = Metacontroller(base_config.width, config)
    path = tmp_path / "metacontroller.pt"
    save_checkpoint(path, {"kind": METACONTROLLER_KIND, "model": metacontroller.state_dict(), "optimizer": None, "step": 0,
                           "config": {"metacontroller": config.to_dict()}, "controlled_layer": base_config.controlled_layer})
    return path


@pytest.fixture
def context_sensitive_base_model_path(tmp_path):
    """A smoke-size base model with enlarged weights (N(0, 0.5²), as in test_transformer.py), in the
    format ``pretrain`` writes: its action logits depend clearly on the past context, so a stepper
    that dropped history would sample other actions (the smoke preset's small initialisation
    gives nearly context-free logits, under which both steppers agree even when one is wrong)."""
    from agents.models.transformer import TRANSFORMER_PRESETS, CausalTransformer
    from agents.pretrain import BASE_MODEL_KIND

    torch.manual_seed(0)
    model = CausalTransformer(TRANSFORMER_PRESETS["smoke"])
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.5)
    path = tmp_path / "context_sensitive_model.pt"
    save_checkpoint(path, {"kind": BASE_MODEL_KIND, "model": model.state_dict(), "optimizer": None, "step": 0,
                           "config": {"model": model.config.to_dict()}})
    return path


@pytest.fixture
def scaled_down_metacontroller_path(tmp_path):
    """A random metacontroller whose controller ``U(z) e`` is scaled down to the order of ``e``
    (at initialisation it is ~40x larger and swamps the residual's own context) and whose β
    is mostly above 0.5 (a decision, with its e_t, at most steps), saved in the format
    ``train_metacontroller`` writes."""
    torch.manual_seed(0)
    config = MetacontrollerConfig(switch_bias_init=1.0)
    metacontroller = Metacontroller(32, config)  # the smoke base model's width
    with torch.no_grad():
        metacontroller.decoder[-1].weight.mul_(0.3)
    path = tmp_path / "scaled_metacontroller.pt"
    save_checkpoint(path, {"kind": METACONTROLLER_KIND, "model": metacontroller.state_dict(), "optimizer": None, "step": 0,
                           "config": {"metacontroller": config.to_dict()}, "controlled_layer": 1})
    return path


def test_internal_rl_throughput_collects_the_same_batch_with_both_steppers(
    context_sensitive_base_model_path, scaled_down_metacontroller_path, tmp_path, monkeypatch
):
    """SPEC B5 / §9.2 item 9: the benchmark times the KV-cached and the re-encoding stepper on the
    *same* batch — equal episodes, decisions, codes and residuals, not only equal step counts —
    and reports their ratio with its provenance."""
    from agents.internal_rl import InternalRLEnvironment
    from benchmarks.internal_rl_throughput import InternalRLThroughputConfig, main

    batches = {}
    collect = InternalRLEnvironment.collect

    def recording_collect(self, policy, seed, generator, stepper=None):
        batch = collect(self, policy, seed, generator, stepper)
        batches[type(stepper).__name__] = batch
        return batch

    monkeypatch.setattr(InternalRLEnvironment, "collect", recording_collect)
    out = tmp_path / "irl.json"
    config = InternalRLThroughputConfig(context_sensitive_base_model_path, scaled_down_metacontroller_path, num_envs=8,
                                        num_threads=1, out=out)
    report = main(config)
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    assert set(batches) == {"NoneType", "CachedStepper", "ReencodingStepper"}  # warm-up, then the two timed runs
    one, other = batches["CachedStepper"], batches["ReencodingStepper"]
    torch.testing.assert_close(other.codes, one.codes)  # the same decisions, with the same codes ...
    torch.testing.assert_close(other.residuals, one.residuals, atol=1e-4, rtol=1e-4)  # ... on the same e_t
    assert torch.equal(one.decision_mask, other.decision_mask) and one.decision_mask.sum() > len(one.lengths)
    assert (one.lengths == other.lengths).all() and torch.equal(one.returns, other.returns)
    cached, reencoding = report["cached"], report["reencoding"]
    assert cached["env_steps"] == reencoding["env_steps"] == int(one.lengths.sum()) > 0
    assert cached["mean_episode_length"] == reencoding["mean_episode_length"]
    assert report["speedup"] == pytest.approx(cached["env_steps_per_s"] / reencoding["env_steps_per_s"])
    assert report["config"]["base_model"] == str(context_sensitive_base_model_path) and report["threads"] == 1
    assert "torch" in report["versions"]
    _assert_provenance(report)
    with pytest.raises(ValueError, match="num_envs"):  # num_threads=1: main sets it before refusing num_envs
        main(InternalRLThroughputConfig(context_sensitive_base_model_path, scaled_down_metacontroller_path, num_envs=0,
                                        num_threads=1))
    assert torch.get_num_threads() == 1  # later tests keep the suite's single thread


def test_markdown_table_aligns_numbers_right_and_refuses_ragged_rows():
    from benchmarks.timing_report import markdown_table

    text = markdown_table("caption", ["env", "steps/s"], [["a", "1"], ["b", "2"]], "footer")
    assert text.split("\n") == ["caption", "", "| env | steps/s |", "|---|---:|", "| a | 1 |", "| b | 2 |", "", "footer"]
    assert not markdown_table("c", ["x"], []).endswith("\n")
    with pytest.raises(ValueError, match="3 cells"):
        markdown_table("c", ["env", "steps/s"], [["a", "1", "extra"]])


def test_hawk_scan_speed_times_a_loop_that_matches_the_scan(tmp_path):
    """The step loop the scan is timed against computes the same recurrence (states and both
    gradients), so the reported speed-up compares equal work."""
    from benchmarks.hawk_scan_speed import HawkScanSpeedConfig, main, step_loop

    out = tmp_path / "hawk.json"
    report = main(HawkScanSpeedConfig(batch_size=2, steps=70, width=8, repeats=1, rounds=2, out=out))
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    assert all(value < 1e-4 for value in report["max_abs_difference"].values())
    assert report["speedup_scan"] == pytest.approx(report["median_s"]["step_loop"] / report["median_s"]["scan"])
    assert len(report["rounds"]) == 2 and "torch" in report["versions"]
    _assert_provenance(report)
    log_a, inputs = torch.tensor([[[-0.5], [-1.0]]]), torch.tensor([[[1.0], [2.0]]])
    expected = torch.tensor([[[1.0], [1.0 * torch.exp(torch.tensor(-1.0)).item() + 2.0]]])
    torch.testing.assert_close(step_loop(log_a, inputs), expected)  # h_1 = x_1, h_2 = a_2 h_1 + x_2
    with pytest.raises(ValueError, match="steps"):
        main(HawkScanSpeedConfig(steps=0))


def test_lower_residuals_speed_trains_the_same_metacontroller_both_ways(tmp_path, monkeypatch):
    """Table and recomputed residuals give the same training (equal action NLL after the timed
    steps), so the benchmark times the same run twice, once with the table and once without;
    the ``default`` preset, whose α schedule is longer than the timed run."""
    import agents.train_metacontroller as trainer
    from agents.lower_residuals import LowerResiduals
    from benchmarks.lower_residuals_speed import LowerResidualsSpeedConfig, main

    tabled = []

    class Recording(LowerResiduals):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            tabled.append(self.cached)

    monkeypatch.setattr(trainer, "LowerResiduals", Recording)
    out = tmp_path / "lower.json"
    report = main(LowerResidualsSpeedConfig(preset="default", steps=3, rounds=1, dstar_episodes=12, out=out))
    assert tabled == [True, False]  # round 0 times the table first, then the lower half recomputed per batch
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    (row,) = report["rounds"]
    assert row["table"]["action_nll"] == pytest.approx(row["recomputed"]["action_nll"], rel=1e-5)
    assert row["table"]["s_per_step"] == pytest.approx(row["table"]["train_s"] / 3)
    assert report["speedup_table"] == pytest.approx(report["median_s_per_step"]["recomputed"]
                                                    / report["median_s_per_step"]["table"])
    assert report["dstar_episodes"] == 12 and report["table_build_s"] > 0
    _assert_provenance(report)
    with pytest.raises(ValueError, match="preset"):
        main(LowerResidualsSpeedConfig(preset="huge"))


def test_batch_assembly_speed_reports_every_size_and_depth(tmp_path):
    from benchmarks.batch_assembly_speed import BatchAssemblySpeedConfig, main

    out = tmp_path / "batches.json"
    report = main(BatchAssemblySpeedConfig(episodes=60, batch_sizes=(4, 16), prefetch_batch_size=8,
                                           prefetch_depths=(0, 2), batches=2, rounds=3, out=out))
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    assert set(report["median_padded_batch_s"]) == {"4", "16"} and set(report["median_prefetcher_s"]) == {"0", "2"}
    for depth in ("0", "2"):  # the median of the three rounds, not one of them picked otherwise
        values = sorted(r["prefetcher_s"][depth] for r in report["rounds"])
        assert report["median_prefetcher_s"][depth] == values[1]
    assert report["dataset_episodes"] == 60
    _assert_provenance(report)
    with pytest.raises(ValueError, match="prefetch_depths"):
        main(BatchAssemblySpeedConfig(episodes=60, prefetch_depths=(-1,)))


def test_sb3_checkpoint_cost_measures_archives_that_load(tmp_path):
    from benchmarks.sb3_checkpoint_cost import SB3CheckpointCostConfig, main

    out = tmp_path / "sb3.json"
    report = main(SB3CheckpointCostConfig(runs=("ppo:HierGrid-v0",), warmup_steps=8, rounds=2, out=out))
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    (row,) = report["checkpoints"]
    assert row["warmup_steps"] >= 8 and len(row["write_s"]) == len(row["load_s"]) == 2
    assert {"state.json", "model.zip", "envs.pkl", "rng.pkl"} == set(row["member_bytes"])  # on-policy: no buffer
    assert row["archive_bytes"] >= sum(row["member_bytes"].values())
    _assert_provenance(report)
    with pytest.raises(ValueError, match="algo:env_id"):
        main(SB3CheckpointCostConfig(runs=("a2c:HierGrid-v0",)))
    with pytest.raises(ValueError, match="runs is empty"):
        main(SB3CheckpointCostConfig(runs=()))


def test_dataset_generation_speed_records_each_dataset_metadata(tmp_path):
    from benchmarks.dataset_generation_speed import DatasetGenerationSpeedConfig, main

    out = tmp_path / "data.json"
    report = main(DatasetGenerationSpeedConfig(datasets=("grid:20", "ant_mean:1"), out=out))
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    grid, ant = report["datasets"]
    assert (grid["kind"], grid["episodes"], ant["kind"], ant["episodes"]) == ("grid", 20, "ant_mean", 1)
    assert grid["steps"] > 20 and ant["env_id"] == "HierAnt-Pretrain-v0"
    assert grid["steps_per_s"] == pytest.approx(grid["steps"] / grid["generation_s"])
    _assert_provenance(report)
    with pytest.raises(ValueError, match="kind:episodes"):
        main(DatasetGenerationSpeedConfig(datasets=("grid:0",)))
    with pytest.raises(ValueError, match="datasets is empty"):
        main(DatasetGenerationSpeedConfig(datasets=()))
