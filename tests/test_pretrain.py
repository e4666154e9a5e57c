"""Pretraining: determinism, resume after interruption, metrics, bad checkpoints (SPEC B4)."""

import dataclasses

import numpy as np
import pytest
import torch

from agents.checkpoints import CheckpointError
from agents.pretrain import PRETRAIN_PRESETS, LengthBucketSampler, PretrainConfig, load_base_model, pretrain
from agents.training_utils import CsvLog
from hier_envs.datasets import generate_grid_dataset

SMOKE = dataclasses.replace(PRETRAIN_PRESETS["smoke"], train_steps=30, eval_every=10, checkpoint_every=10, snapshot_steps=(10,))


@pytest.fixture(scope="module")
def dataset():
    return generate_grid_dataset(120, 0.1, seed=0, progress=False)


def weights(path):
    return [tensor.clone() for tensor in load_base_model(path).state_dict().values()]


def test_resume_gives_identical_weights(dataset, tmp_path):
    straight = pretrain(SMOKE, dataset, tmp_path / "straight", progress=False)
    partial = pretrain(SMOKE, dataset, tmp_path / "resumed", stop_after=20, progress=False)
    assert partial.name == "latest.pt" and not (tmp_path / "resumed" / "model.pt").exists()
    resumed = pretrain(SMOKE, dataset, tmp_path / "resumed", progress=False)
    assert all(torch.equal(a, b) for a, b in zip(weights(straight), weights(resumed)))
    steps = [row["step"] for row in CsvLog(tmp_path / "resumed" / "metrics.csv", ["step"]).read()]
    assert steps == ["10", "20", "30"]
    assert (tmp_path / "resumed" / "snapshots" / "step_10.pt").exists()


def test_seed_changes_weights(dataset, tmp_path):
    a = pretrain(SMOKE, dataset, tmp_path / "a", progress=False)
    b = pretrain(dataclasses.replace(SMOKE, seed=1), dataset, tmp_path / "b", progress=False)
    assert not all(torch.equal(x, y) for x, y in zip(weights(a), weights(b)))


def test_loss_decreases(dataset, tmp_path):
    config = dataclasses.replace(SMOKE, train_steps=60, eval_every=20, checkpoint_every=20)
    pretrain(config, dataset, tmp_path / "run", progress=False)
    rows = CsvLog(tmp_path / "run" / "metrics.csv", ["step"]).read()
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])


def test_other_config_in_same_run_dir_is_refused(dataset, tmp_path):
    pretrain(SMOKE, dataset, tmp_path / "run", stop_after=10, progress=False)
    with pytest.raises(CheckpointError, match="different PretrainConfig"):
        pretrain(dataclasses.replace(SMOKE, learning_rate=1e-3), dataset, tmp_path / "run", progress=False)


def test_truncated_checkpoint_names_the_file(dataset, tmp_path):
    path = pretrain(SMOKE, dataset, tmp_path / "run", progress=False)
    data = path.read_bytes()
    broken = tmp_path / "broken_model.pt"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="broken_model.pt"):
        load_base_model(broken)


def test_length_buckets_keep_uniform_marginals():
    lengths = np.array([5] * 50 + [50] * 50)
    sampler = LengthBucketSampler(np.arange(100), lengths, 2)
    rng = np.random.default_rng(0)
    draws = np.concatenate([sampler.sample(rng, 10) for _ in range(4000)])
    counts = np.bincount(draws, minlength=100)
    assert counts.min() > 0.8 * counts.mean() and counts.max() < 1.2 * counts.mean()
    batch = sampler.sample(rng, 10)
    assert len(set(lengths[batch])) == 1  # one bucket per batch


def test_cosine_schedule_values():
    """``lr_schedule="cosine"`` decays from the learning rate to ``lr_final_fraction`` of it; constant stays put."""
    config = PretrainConfig(learning_rate=1e-3, lr_schedule="cosine", lr_final_fraction=0.1, train_steps=100)
    rates = [config.learning_rate_at(step) for step in range(101)]
    assert rates[0] == pytest.approx(1e-3) and rates[100] == pytest.approx(1e-4)
    assert rates[50] == pytest.approx(0.55e-3)
    assert all(a > b for a, b in zip(rates, rates[1:]))
    assert {PretrainConfig(learning_rate=1e-3).learning_rate_at(step) for step in (0, 5_000, 10_000)} == {1e-3}


@pytest.mark.parametrize("field, value", [("lr_schedule", "linear"), ("lr_final_fraction", 1.5), ("precision", "float16"),
                                          ("lr_final_fraction", float("nan")), ("lr_final_fraction", -0.1)])
def test_bad_schedule_and_precision_values_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        PretrainConfig(**{field: value})


def test_cosine_run_resumes_identically_and_differs_from_constant(dataset, tmp_path):
    """The rate is a function of the step, so an interrupted cosine run ends where a straight one does;
    and the optimiser really follows it (the weights differ from the constant-rate run)."""
    cosine = dataclasses.replace(SMOKE, lr_schedule="cosine", lr_final_fraction=0.0)
    straight = pretrain(cosine, dataset, tmp_path / "straight", progress=False)
    pretrain(cosine, dataset, tmp_path / "resumed", stop_after=20, progress=False)
    resumed = pretrain(cosine, dataset, tmp_path / "resumed", progress=False)
    assert all(torch.equal(a, b) for a, b in zip(weights(straight), weights(resumed)))
    constant = pretrain(SMOKE, dataset, tmp_path / "constant", progress=False)
    assert not all(torch.equal(a, b) for a, b in zip(weights(straight), weights(constant)))


@pytest.mark.parametrize("added_fields, other_value", [(("lr_schedule", "lr_final_fraction"), {"lr_schedule": "cosine"}),
                                                      (("precision",), {"precision": "bfloat16"})])
def test_run_dir_written_before_a_field_was_added_still_resumes(dataset, tmp_path, added_fields, other_value):
    """A checkpoint whose stored config predates ``added_fields`` reads them as
    ``PRETRAIN_ADDED_FIELDS`` (constant rate, float32): it resumes with those values and refuses others."""
    from agents.checkpoints import load_checkpoint, save_checkpoint

    partial = pretrain(SMOKE, dataset, tmp_path / "run", stop_after=10, progress=False)
    record = load_checkpoint(partial)
    for key in added_fields:
        del record["config"][key]
    save_checkpoint(partial, record)
    with pytest.raises(CheckpointError, match="different PretrainConfig"):
        pretrain(dataclasses.replace(SMOKE, **other_value), dataset, tmp_path / "run", progress=False)
    assert pretrain(SMOKE, dataset, tmp_path / "run", progress=False).name == "model.pt"


@pytest.mark.parametrize("flag, key, value", [("--lr-schedule", "lr_schedule", "cosine"),
                                              ("--precision", "precision", "bfloat16")])
def test_cli_override_reaches_the_run(dataset, tmp_path, flag, key, value):
    """``python -m agents.pretrain --lr-schedule cosine`` (or ``--precision bfloat16``) trains with,
    and records, that setting."""
    from agents.checkpoints import load_checkpoint
    from agents.pretrain import main
    from hier_envs.datasets import save_dataset

    save_dataset(dataset, tmp_path / "D.npz")
    main(["--preset", "smoke", "--dataset", str(tmp_path / "D.npz"), "--run-dir", str(tmp_path / "run"),
          "--train-steps", "4", flag, value])
    assert load_checkpoint(tmp_path / "run" / "model.pt")["config"][key] == value


def test_bfloat16_run_resumes_identically_and_differs_from_float32(dataset, tmp_path):
    """``precision="bfloat16"`` really runs the forward pass in bfloat16 (other weights than the
    float32 run, close to its losses) yet keeps float32 weights, and resumes bit for bit."""
    bf16 = dataclasses.replace(SMOKE, precision="bfloat16")
    straight = pretrain(bf16, dataset, tmp_path / "straight", progress=False)
    pretrain(bf16, dataset, tmp_path / "resumed", stop_after=20, progress=False)
    resumed = pretrain(bf16, dataset, tmp_path / "resumed", progress=False)
    assert all(torch.equal(a, b) for a, b in zip(weights(straight), weights(resumed)))
    assert {tensor.dtype for tensor in weights(straight)} == {torch.float32}
    full = pretrain(SMOKE, dataset, tmp_path / "float32", progress=False)
    assert not all(torch.equal(a, b) for a, b in zip(weights(straight), weights(full)))
    last = {name: CsvLog(tmp_path / name / "metrics.csv", ["step"]).read()[-1] for name in ("straight", "float32")}
    nll = {name: float(row["val_action_nll"]) for name, row in last.items()}
    assert np.isfinite(nll["straight"]) and abs(nll["straight"] - nll["float32"]) < 0.05


def test_checkpoint_records_the_devices_it_trained_on(dataset, tmp_path):
    from agents.checkpoints import load_checkpoint

    path = pretrain(SMOKE, dataset, tmp_path / "run", stop_after=10, progress=False, device="cpu")
    assert load_checkpoint(path)["devices"] == ["cpu"]


def test_cli_refuses_a_device_this_machine_lacks(dataset, tmp_path, capsys):
    from agents.pretrain import main
    from hier_envs.datasets import save_dataset

    save_dataset(dataset, tmp_path / "D.npz")
    missing = "cuda:99" if torch.cuda.is_available() else "cuda"
    with pytest.raises(SystemExit):
        main(["--preset", "smoke", "--dataset", str(tmp_path / "D.npz"), "--run-dir", str(tmp_path / "run"),
              "--device", missing])
    assert f"device '{missing}'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_run_started_on_the_gpu_finishes_on_the_cpu(dataset, tmp_path):
    """The device is not configuration: a run cut short on the GPU resumes on the CPU and ends
    near the all-CPU run (float rounding differs between devices, so not bit-equal)."""
    from agents.checkpoints import load_checkpoint

    cpu_path = pretrain(SMOKE, dataset, tmp_path / "cpu", progress=False)
    pretrain(SMOKE, dataset, tmp_path / "mixed", stop_after=20, progress=False, device="cuda")
    mixed_path = pretrain(SMOKE, dataset, tmp_path / "mixed", progress=False, device="cpu")
    assert load_checkpoint(mixed_path)["devices"] == ["cpu", "cuda"]
    final = [CsvLog(path.parent / "metrics.csv", ["step"]).read()[-1] for path in (cpu_path, mixed_path)]
    assert abs(float(final[0]["val_action_nll"]) - float(final[1]["val_action_nll"])) < 0.05


def test_cli_batch_size_reaches_the_run_and_bad_values_are_refused(dataset, tmp_path, capsys):
    from agents.checkpoints import load_checkpoint
    from agents.pretrain import main
    from hier_envs.datasets import save_dataset

    save_dataset(dataset, tmp_path / "D.npz")
    args = ["--preset", "smoke", "--dataset", str(tmp_path / "D.npz"), "--train-steps", "2"]
    main([*args, "--run-dir", str(tmp_path / "run"), "--batch-size", "4"])
    assert load_checkpoint(tmp_path / "run" / "model.pt")["config"]["batch_size"] == 4
    with pytest.raises(SystemExit):
        main([*args, "--run-dir", str(tmp_path / "bad"), "--batch-size", "0"])
    assert "PretrainConfig.batch_size" in capsys.readouterr().err


def test_prefetched_batches_are_the_same_batches_across_a_resume(dataset, tmp_path):
    """Batches assembled ahead in threads (the GPU default) train the same weights, and a run cut
    short with batches in flight resumes as if none had been drawn ahead."""
    straight = pretrain(SMOKE, dataset, tmp_path / "straight", progress=False, prefetch_batches=0)
    ahead = pretrain(SMOKE, dataset, tmp_path / "ahead", progress=False, prefetch_batches=3)
    pretrain(SMOKE, dataset, tmp_path / "cut", stop_after=15, progress=False, prefetch_batches=4)
    resumed = pretrain(SMOKE, dataset, tmp_path / "cut", progress=False, prefetch_batches=2)
    reference = weights(straight)
    for path in (ahead, resumed):
        assert all(torch.equal(a, b) for a, b in zip(reference, weights(path)))


def test_bad_prefetch_depth_is_refused():
    from agents.pretrain import BatchPrefetcher

    with pytest.raises(ValueError, match="prefetch depth must be an int >= 0, got -1"):
        BatchPrefetcher(None, None, np.random.default_rng(0), 4, depth=-1)


def test_pretrain_speed_benchmark_times_both_precisions():
    """``benchmarks/pretrain_speed.py`` times each precision in every round and refuses bad settings."""
    from benchmarks.pretrain_speed import PretrainSpeedConfig, time_pretraining

    results = time_pretraining(PretrainSpeedConfig(preset="smoke", steps=3, rounds=2, episodes=40))
    assert len(results["rounds"]) == 2 and all(set(row) == {"float32", "bfloat16"} for row in results["rounds"])
    assert all(rate > 0 for rate in results["median_steps_per_s"].values()) and results["speedup_bfloat16"] > 0
    with pytest.raises(ValueError, match="steps"):
        time_pretraining(PretrainSpeedConfig(preset="smoke", steps=0))
    with pytest.raises(ValueError, match="'huge'"):
        time_pretraining(PretrainSpeedConfig(preset="huge"))


def test_resume_with_dropout_gives_identical_weights(dataset, tmp_path):
    """Dropout draws from torch's global RNG, so a resume must restore the checkpoint's global RNG
    state (SPEC B4); without it the masks after the cut differ from the uninterrupted run's."""
    config = dataclasses.replace(SMOKE, model=dataclasses.replace(SMOKE.model, dropout=0.1))
    straight = pretrain(config, dataset, tmp_path / "straight", progress=False)
    pretrain(config, dataset, tmp_path / "resumed", stop_after=15, progress=False)  # between checkpoints
    torch.manual_seed(123)  # whatever the caller did in between
    resumed = pretrain(config, dataset, tmp_path / "resumed", progress=False)
    assert all(torch.equal(a, b) for a, b in zip(weights(straight), weights(resumed)))
    no_dropout = pretrain(SMOKE, dataset, tmp_path / "no_dropout", progress=False)  # dropout really drew masks
    assert not all(torch.equal(a, b) for a, b in zip(weights(straight), weights(no_dropout)))


@pytest.mark.parametrize("finished", [False, True])
def test_run_dir_made_from_another_dataset_is_refused(dataset, tmp_path, finished):
    """Resuming ``latest.pt``, or reusing a finished ``model.pt``, with other data than the run was
    trained on raises, naming the file, instead of mixing two datasets or recording the new one."""
    from agents.checkpoints import load_checkpoint

    other = generate_grid_dataset(120, 0.1, seed=5, progress=False)
    assert other.sha256 != dataset.sha256
    path = pretrain(SMOKE, dataset, tmp_path / "run", stop_after=None if finished else 10, progress=False)
    assert path.name == ("model.pt" if finished else "latest.pt")
    with pytest.raises(CheckpointError, match=f"{path.name}.*dataset_sha256"):
        pretrain(SMOKE, other, tmp_path / "run", progress=False)
    assert load_checkpoint(path)["dataset_sha256"] == dataset.sha256
    assert pretrain(SMOKE, dataset, tmp_path / "run", progress=False).name == "model.pt"  # the same data still goes on


@pytest.mark.parametrize("snapshot_steps, error, message", [
    ((10, 31), ValueError, "holds 31"),
    ((0,), ValueError, "holds 0"),
    ((-5,), ValueError, "holds -5"),
    (10, TypeError, "must be a tuple or list, got int 10"),
    ((10.0,), TypeError, "holds 10.0"),
    ((True,), TypeError, "holds True"),
])
def test_snapshot_steps_outside_the_run_are_refused(snapshot_steps, error, message):
    """A snapshot step the run never reaches would never be written (the study then fails loading it)."""
    with pytest.raises(error, match=rf"PretrainConfig\.snapshot_steps.*{message}"):
        dataclasses.replace(SMOKE, snapshot_steps=snapshot_steps)


def test_snapshot_steps_are_stored_sorted_and_unique_and_presets_stay_valid(dataset, tmp_path):
    from agents.pretrain import ANT_PRETRAIN_PRESETS

    config = dataclasses.replace(SMOKE, snapshot_steps=[30, 10, 10])
    assert config.snapshot_steps == (10, 30) and config == dataclasses.replace(SMOKE, snapshot_steps=(10, 30))
    for preset in [*PRETRAIN_PRESETS.values(), *ANT_PRETRAIN_PRESETS.values()]:
        assert dataclasses.replace(preset) == preset and preset.snapshot_steps[-1] == preset.train_steps
    pretrain(config, dataset, tmp_path / "run", progress=False)
    assert sorted(path.name for path in (tmp_path / "run" / "snapshots").iterdir()) == ["step_10.pt", "step_30.pt"]


def test_cli_train_steps_drops_the_snapshots_it_never_reaches(dataset, tmp_path):
    from agents.checkpoints import load_checkpoint
    from agents.pretrain import main
    from hier_envs.datasets import save_dataset

    save_dataset(dataset, tmp_path / "D.npz")
    main(["--preset", "smoke", "--dataset", str(tmp_path / "D.npz"), "--run-dir", str(tmp_path / "run"),
          "--train-steps", "25"])  # the smoke preset snapshots at 20 and 60
    assert load_checkpoint(tmp_path / "run" / "model.pt")["config"]["snapshot_steps"] == (20,)
    assert [path.name for path in (tmp_path / "run" / "snapshots").iterdir()] == ["step_20.pt"]


@pytest.mark.parametrize("stop_after", [0, -1, 2.5, True])
def test_stop_after_below_one_is_refused(dataset, tmp_path, stop_after):
    """``stop_after=0`` used to return a ``latest.pt`` that a fresh run never wrote."""
    with pytest.raises(ValueError, match=rf"stop_after must be None or an int >= 1, got {stop_after!r}"):
        pretrain(SMOKE, dataset, tmp_path / "run", stop_after=stop_after, progress=False)
    assert not (tmp_path / "run").exists()
