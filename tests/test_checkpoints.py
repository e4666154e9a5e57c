"""Atomic, verified checkpoints (SPEC B4)."""

import random

import numpy as np
import pytest
import torch

from agents.checkpoints import (
    FORMAT_VERSION,
    CheckpointError,
    capture_rng_state,
    generator_state,
    load_checkpoint,
    load_model_state,
    restore_rng_state,
    save_checkpoint,
    set_generator_state,
)
from agents.models import TRANSFORMER_PRESETS, CausalTransformer, TransformerConfig, sequence_loss

SMOKE = TRANSFORMER_PRESETS["smoke"]


def trained_model_and_optimizer(steps: int = 2) -> tuple[CausalTransformer, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = CausalTransformer(SMOKE)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.03)
    observations = (torch.rand(2, 5, SMOKE.obs_dim) < 0.1).float()
    actions = torch.randint(0, 4, (2, 5))
    for _ in range(steps):
        output = model(observations)
        loss = sequence_loss(output, actions, observations, torch.ones(2, 5, dtype=torch.bool), 0.01)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model, optimizer


def payload(model, optimizer, step: int = 2) -> dict:
    return {
        "kind": "base_model",
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": step,
        "config": model.config.to_dict(),
    }


def test_round_trip_restores_model_optimizer_and_rng(tmp_path):
    model, optimizer = trained_model_and_optimizer()
    path = tmp_path / "ckpt" / "base.pt"
    torch.manual_seed(123)
    np.random.seed(7)
    random.seed(9)
    generator = np.random.default_rng(5)
    torch_generator = torch.Generator().manual_seed(11)
    record = payload(model, optimizer) | {
        "generators": {"numpy": generator_state(generator), "torch": generator_state(torch_generator)}
    }
    save_checkpoint(path, record)
    def draws():
        numpy_draws = (np.random.rand(3), generator.random(3))
        return torch.rand(3), *numpy_draws, random.random(), torch.rand(3, generator=torch_generator)

    expected = draws()

    loaded = load_checkpoint(path, expected_kind="base_model")
    assert loaded["format_version"] == FORMAT_VERSION and loaded["step"] == 2
    config = TransformerConfig.from_dict(loaded["config"])
    assert config == SMOKE
    fresh = CausalTransformer(config)
    load_model_state(fresh, loaded["model"], path)
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), model.state_dict().values()))
    fresh_optimizer = torch.optim.AdamW(fresh.parameters(), lr=1e-3, weight_decay=0.03)
    fresh_optimizer.load_state_dict(loaded["optimizer"])
    assert torch.equal(
        fresh_optimizer.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"]
    )

    restore_rng_state(loaded["rng"])
    set_generator_state(generator, loaded["generators"]["numpy"])
    set_generator_state(torch_generator, loaded["generators"]["torch"])
    again = draws()
    assert torch.equal(again[0], expected[0]) and torch.equal(again[4], expected[4])
    assert np.array_equal(again[1], expected[1]) and np.array_equal(again[2], expected[2])
    assert again[3] == expected[3]
    assert [p.name for p in path.parent.iterdir()] == ["base.pt"]  # no temporary files left


def test_truncated_and_corrupt_files_raise(tmp_path):
    model, optimizer = trained_model_and_optimizer(1)
    path = tmp_path / "good.pt"
    save_checkpoint(path, payload(model, optimizer))
    data = path.read_bytes()

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated.pt"):
        load_checkpoint(truncated)

    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF  # inside tensor data: torch.load alone accepts this
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="corrupt.pt"):
        load_checkpoint(corrupt)

    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage.pt"):
        load_checkpoint(garbage)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_version_kind_and_keys_are_checked(tmp_path):
    model, optimizer = trained_model_and_optimizer(1)
    path = tmp_path / "base.pt"
    save_checkpoint(path, payload(model, optimizer))
    with pytest.raises(CheckpointError, match="kind is 'base_model', expected 'metacontroller'"):
        load_checkpoint(path, expected_kind="metacontroller")

    old = tmp_path / "old.pt"
    torch.save(payload(model, optimizer) | {"format_version": FORMAT_VERSION + 1, "rng": capture_rng_state()}, old)
    with pytest.raises(CheckpointError, match="old.pt.*version"):
        load_checkpoint(old)

    incomplete = tmp_path / "incomplete.pt"
    record = payload(model, optimizer) | {"format_version": FORMAT_VERSION, "rng": capture_rng_state()}
    del record["optimizer"]
    torch.save(record, incomplete)
    with pytest.raises(CheckpointError, match="incomplete.pt.*optimizer"):
        load_checkpoint(incomplete)

    with pytest.raises(ValueError, match="step"):
        save_checkpoint(tmp_path / "bad.pt", payload(model, optimizer) | {"step": -1})
    with pytest.raises(ValueError, match="missing"):
        save_checkpoint(tmp_path / "bad.pt", {"kind": "x"})
    assert not (tmp_path / "bad.pt").exists()


def test_model_state_mismatch_names_file_and_parameter(tmp_path):
    model, optimizer = trained_model_and_optimizer(1)
    path = tmp_path / "smoke.pt"
    save_checkpoint(path, payload(model, optimizer))
    state = load_checkpoint(path)["model"]

    wider = CausalTransformer(
        TransformerConfig(width=64, n_layers=2, n_heads=2, mlp_hidden=64, input_encoding="egocentric")
    )
    with pytest.raises(CheckpointError, match=r"smoke\.pt.*'embed\.linear\.weight'.*\(32, 2246\).*\(64, 2246\)"):
        load_model_state(wider, state, path)

    flat = CausalTransformer(TransformerConfig(width=32, n_layers=2, n_heads=2, mlp_hidden=64, input_encoding="flat"))
    with pytest.raises(CheckpointError, match=r"smoke\.pt"):
        load_model_state(flat, state, path)

    deeper = CausalTransformer(
        TransformerConfig(width=32, n_layers=3, n_heads=2, mlp_hidden=64, input_encoding="egocentric")
    )
    with pytest.raises(CheckpointError, match=r"smoke\.pt.*lacks.*'blocks\.2\."):
        load_model_state(deeper, state, path)

    shallower = CausalTransformer(
        TransformerConfig(width=32, n_layers=1, n_heads=2, mlp_hidden=64, input_encoding="egocentric")
    )
    with pytest.raises(CheckpointError, match=r"smoke\.pt.*model lacks.*'blocks\.1\."):
        load_model_state(shallower, state, path)


def test_failed_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    model, optimizer = trained_model_and_optimizer(1)
    path = tmp_path / "latest.pt"
    save_checkpoint(path, payload(model, optimizer, step=1))
    before = path.read_bytes()
    real_save = torch.save

    def failing_save(obj, handle, *args, **kwargs):
        real_save(obj, handle, *args, **kwargs)  # write a full archive into the temp file...
        handle.seek(0)
        handle.truncate(100)  # ...leave it half-written...
        raise OSError("disk full")  # ...and fail

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, payload(model, optimizer, step=2))
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert load_checkpoint(path)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.pt"]
