"""Dataset generation, on-disk format and loading (SPEC A§2.3, B3)."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from hier_envs.datasets import (
    DATA_KEYS,
    SCHEMA_VERSION,
    DatasetError,
    EpisodeDataset,
    arrays_sha256,
    generate_grid_dataset,
    load_dataset,
    main,
    save_dataset,
)
from hier_envs.grid_layout import ACTION_DELTAS
from hier_envs.tasks import GRID_POSTTRAIN_TASK, GRID_PRETRAIN_TASKS

GRID, PLANE = 7, 49
N_WALLS, N_COLORS = 4, 8
AGENT_PLANE = N_WALLS + N_COLORS


@pytest.fixture(scope="module")
def noisy() -> EpisodeDataset:
    return generate_grid_dataset(40, epsilon=0.1, seed=3, progress=False)


@pytest.fixture(scope="module")
def saved(noisy, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "grid.npz"
    save_dataset(noisy, path)
    return path


def rewrite(src: Path, dst: Path, change) -> None:
    """Copy a dataset file, letting ``change(arrays)`` edit the arrays (metadata included)."""
    with np.load(src, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    change(arrays)
    np.savez(dst, **arrays)


# ------------------------------------------------------------------------ generation
def test_generated_dataset_is_consistent(noisy):
    assert noisy.n_episodes == 40 and len(noisy) == 40
    assert noisy.n_steps == noisy.episode_lengths.sum() == len(noisy.actions) == len(noisy.subgoals)
    assert noisy.obs_dim == 637
    assert noisy.observations.shape == (noisy.n_steps + 40, 80) and noisy.observations.dtype == np.uint8
    assert noisy.episode_success.all()  # only_success by default
    meta = noisy.metadata
    assert meta["schema_version"] == SCHEMA_VERSION and meta["kind"] == "grid"
    assert meta["env_id"] == "HierGrid-Pretrain-v0" and meta["obs_encoding"] == "packbits"
    assert meta["generator"]["epsilon"] == 0.1 and meta["generator"]["seed"] == 3
    assert meta["counts"]["episodes"] == 40 and meta["counts"]["steps"] == noisy.n_steps
    assert meta["sha256"] == arrays_sha256(noisy.arrays())
    assert {tuple(t[t >= 0]) for t in noisy.episode_tasks} <= set(GRID_PRETRAIN_TASKS)
    for key in DATA_KEYS:
        assert not getattr(noisy, key).flags.writeable


def test_env_kwargs_pick_the_tasks_and_are_recorded():
    tasks = [[0, 1, 2, 3, 4, 5], [6, 7, 0, 1, 2, 3]]  # transitions absent from Table A1
    data = generate_grid_dataset(12, epsilon=0.0, seed=5, env_kwargs={"tasks": tasks}, progress=False)
    assert data.metadata["env_config"]["tasks"] == tasks
    assert {tuple(t[t >= 0]) for t in data.episode_tasks} == {tuple(t) for t in tasks}
    with pytest.raises(TypeError, match="env_kwargs"):
        generate_grid_dataset(2, epsilon=0.0, seed=5, env_kwargs=[("tasks", tasks)], progress=False)
    with pytest.raises(ValueError):
        generate_grid_dataset(2, epsilon=0.0, seed=5, env_kwargs={"tasks": [[0, 0]]}, progress=False)


def decode_episode(episode):
    """Agent cells and colour cells from decoded observations."""
    planes = episode["observations"].reshape(-1, AGENT_PLANE + 1, PLANE)
    assert set(np.unique(planes)) <= {0.0, 1.0}
    assert (planes.sum(axis=2) == 1).all()  # every plane is one-hot in every observation
    agent = planes[:, AGENT_PLANE].argmax(axis=1)
    colors = planes[0, N_WALLS:AGENT_PLANE].argmax(axis=1)
    walls = planes[0, :N_WALLS].argmax(axis=1)
    return agent, colors, walls


@pytest.mark.parametrize("index", range(0, 40, 7))
def test_observations_actions_and_subgoal_labels_agree(noisy, index):
    """Replays the pinpad rules on the stored observations: moves follow the actions, subgoal
    labels equal next_color // 2, and the episode ends exactly when the task is done."""
    episode = noisy.episode(index)
    agent, colors, walls = decode_episode(episode)
    task = episode["task"]
    colors_visited = 0
    for t, action in enumerate(episode["actions"]):
        assert episode["subgoals"][t] == task[colors_visited] // 2
        row, col = divmod(int(agent[t]), GRID)
        d_row, d_col = ACTION_DELTAS[action]
        target = (row + d_row) * GRID + (col + d_col)
        inside = 0 <= row + d_row < GRID and 0 <= col + d_col < GRID
        expected = target if inside and target not in walls else agent[t]
        assert agent[t + 1] == expected
        if agent[t + 1] != agent[t] and agent[t + 1] in colors:
            assert agent[t + 1] == colors[task[colors_visited]]  # never a wrong colour
            colors_visited += 1
    assert colors_visited == len(task) and episode["success"]


def test_same_seed_gives_byte_identical_arrays(noisy):
    again = generate_grid_dataset(40, epsilon=0.1, seed=3, progress=False)
    for key in DATA_KEYS:
        a, b = getattr(noisy, key), getattr(again, key)
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    assert again.metadata["sha256"] == noisy.metadata["sha256"]
    other = generate_grid_dataset(40, epsilon=0.1, seed=4, progress=False)
    assert other.metadata["sha256"] != noisy.metadata["sha256"]


def test_keep_failures_and_discard_counts():
    kept = generate_grid_dataset(30, epsilon=0.9, seed=0, only_success=False, progress=False)
    assert kept.n_episodes == 30 and not kept.episode_success.all()
    assert kept.metadata["counts"]["discarded_failures"] == 0
    assert (kept.episode_lengths[~kept.episode_success] == 100).all()  # ε-noise only ever truncates
    filtered = generate_grid_dataset(5, epsilon=0.6, seed=0, progress=False)
    assert filtered.episode_success.all() and filtered.metadata["counts"]["discarded_failures"] > 0


def test_post_training_env_id():
    data = generate_grid_dataset(5, epsilon=0.0, seed=0, env_id="HierGrid-v0", progress=False)
    assert all(data.episode(i)["task"] == GRID_POSTTRAIN_TASK for i in range(5))


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"n_episodes": 0}, ValueError),
        ({"epsilon": 2.0}, ValueError),
        ({"seed": -1}, ValueError),
        ({"env_id": "NoSuchEnv-v0"}, ValueError),
        ({"env_id": "CartPole-v1"}, ValueError),
    ],
)
def test_generation_rejects_bad_arguments(kwargs, error):
    arguments = {"n_episodes": 2, "epsilon": 0.0, "seed": 0, "progress": False, **kwargs}
    with pytest.raises(error):
        generate_grid_dataset(**arguments)


def test_hopeless_filtering_stops():
    with pytest.raises(RuntimeError, match="attempts"):
        generate_grid_dataset(3, epsilon=1.0, seed=0, env_id="HierGrid-v0", progress=False, max_attempts=5)


# -------------------------------------------------------------------------- save/load
def test_round_trip(noisy, saved):
    loaded = load_dataset(saved)
    for key in DATA_KEYS:
        np.testing.assert_array_equal(getattr(loaded, key), getattr(noisy, key))
        assert getattr(loaded, key).dtype == getattr(noisy, key).dtype
    from hier_envs.datasets import metadata_sha256

    expected = {**noisy.metadata, "schema_version": SCHEMA_VERSION}
    assert loaded.metadata == {**expected, "metadata_sha256": metadata_sha256(expected)}
    assert not list(saved.parent.glob("*.tmp"))


def test_uncompressed_and_mapping_round_trip(noisy, tmp_path):
    arrays = {key: np.array(getattr(noisy, key)) for key in DATA_KEYS}
    save_dataset({**arrays, "metadata": {"kind": "grid", "obs_dim": 637, "obs_encoding": "packbits"}},
                 tmp_path / "raw.npz", compress=False)
    loaded = load_dataset(tmp_path / "raw.npz")
    assert loaded.metadata["counts"] == {"episodes": 40, "steps": noisy.n_steps, "discarded_failures": 0}
    assert loaded.sha256 == noisy.sha256
    np.testing.assert_array_equal(loaded.episode(3)["observations"], noisy.episode(3)["observations"])


def test_truncated_file_raises(saved, tmp_path):
    data = saved.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 100):
        path = tmp_path / f"cut{cut}.npz"
        path.write_bytes(data[:cut])
        with pytest.raises(DatasetError, match=str(path)):
            load_dataset(path)


def test_flipped_byte_raises(saved, tmp_path):
    data = bytearray(saved.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path = tmp_path / "flipped.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="flipped.npz"):
        load_dataset(path)


def test_tampered_array_raises(saved, tmp_path):
    def flip_action(arrays):
        arrays["actions"] = arrays["actions"].copy()
        arrays["actions"][5] = (arrays["actions"][5] + 1) % 4

    path = tmp_path / "tampered.npz"
    rewrite(saved, path, flip_action)
    with pytest.raises(DatasetError, match="sha256 mismatch"):
        load_dataset(path)


def edit_metadata(**changes):
    def change(arrays):
        metadata = json.loads(arrays["metadata"].item())
        metadata.update(changes)
        arrays["metadata"] = np.array(json.dumps(metadata))

    return change


@pytest.mark.parametrize(
    "change, message",
    [
        (edit_metadata(schema_version=2), "schema_version"),
        (edit_metadata(counts={"episodes": 41, "steps": 0}), "counts"),
        (edit_metadata(obs_dim=640), "env_config"),
        (edit_metadata(obs_dim=648, env_config=None), "shape"),
        (edit_metadata(obs_encoding="float32"), "observations"),
        (edit_metadata(kind="maze"), "kind"),
        (lambda arrays: arrays.pop("subgoals"), "missing"),
        (lambda arrays: arrays.update(extra=np.zeros(3)), "unexpected"),
        (lambda arrays: arrays.update(metadata=np.array("{not json")), "JSON"),
        (lambda arrays: arrays.update(episode_lengths=arrays["episode_lengths"].astype(np.int32)), "int64"),
    ],
)
def test_wrong_metadata_or_arrays_raise(saved, tmp_path, change, message):
    path = tmp_path / "bad.npz"
    rewrite(saved, path, change)
    with pytest.raises(DatasetError, match=message):
        load_dataset(path)


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_dataset(tmp_path / "absent.npz")
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(DatasetError, match="text.npz"):
        load_dataset(text)
    with zipfile.ZipFile(tmp_path / "empty.npz", "w"):
        pass
    with pytest.raises(DatasetError, match="missing"):
        load_dataset(tmp_path / "empty.npz")


def test_dataset_error_is_a_value_error():
    assert issubclass(DatasetError, ValueError)


def test_constructor_validates(noisy):
    arrays = {key: np.array(getattr(noisy, key)) for key in DATA_KEYS}
    with pytest.raises(DatasetError, match="actions"):
        EpisodeDataset(**{**arrays, "actions": arrays["actions"][:-1]}, metadata=noisy.metadata)
    with pytest.raises(DatasetError, match="obs_dim"):
        EpisodeDataset(**arrays, metadata={"kind": "grid", "obs_encoding": "packbits"})


# ----------------------------------------------------------------------------- batches
def test_padded_batch_matches_episodes(noisy):
    indices = np.array([3, 0, 17, 3, 39])
    batch = noisy.padded_batch(indices)
    lengths = noisy.episode_lengths[indices]
    length = int(lengths.max())
    assert batch["observations"].shape == batch["next_observations"].shape == (5, length, 637)
    assert batch["observations"].dtype == np.float32
    assert batch["actions"].shape == batch["subgoals"].shape == batch["mask"].shape == (5, length)
    np.testing.assert_array_equal(batch["mask"].sum(axis=1), lengths)
    np.testing.assert_array_equal(batch["lengths"], lengths)
    for row, index in enumerate(indices):
        episode, n = noisy.episode(int(index)), int(lengths[row])
        assert batch["mask"][row, :n].all() and not batch["mask"][row, n:].any()
        np.testing.assert_array_equal(batch["observations"][row, :n], episode["observations"][:-1])
        np.testing.assert_array_equal(batch["next_observations"][row, :n], episode["observations"][1:])
        np.testing.assert_array_equal(batch["actions"][row, :n], episode["actions"])
        np.testing.assert_array_equal(batch["subgoals"][row, :n], episode["subgoals"])
        assert (batch["observations"][row, n:] == 0).all() and (batch["next_observations"][row, n:] == 0).all()
        assert (batch["actions"][row, n:] == -1).all() and (batch["subgoals"][row, n:] == -1).all()


def test_padded_batch_max_len(noisy):
    index = int(np.argmax(noisy.episode_lengths))
    length = int(noisy.episode_lengths[index])
    short = noisy.padded_batch([index], max_len=5)
    episode = noisy.episode(index)
    assert short["observations"].shape == (1, 5, 637) and short["mask"].all()
    np.testing.assert_array_equal(short["next_observations"][0], episode["observations"][1:6])
    long = noisy.padded_batch([index], max_len=length + 7)
    assert long["mask"].sum() == length and long["actions"].shape == (1, length + 7)
    with pytest.raises(ValueError, match="max_len"):
        noisy.padded_batch([index], max_len=0)
    with pytest.raises(IndexError):
        noisy.padded_batch([40])


def test_split_and_subset(noisy, tmp_path):
    train, val = noisy.split(0.25, seed=0)
    assert len(val) == 10 and len(train) == 30
    assert np.intersect1d(train, val).size == 0 and np.union1d(train, val).tolist() == list(range(40))
    assert np.array_equal(noisy.split(0.25, seed=0)[1], val)
    with pytest.raises(ValueError, match="val_fraction"):
        noisy.split(1.0, seed=0)
    part = noisy.subset(val)
    assert part.n_episodes == 10 and part.metadata["counts"]["steps"] == part.n_steps
    for row, index in enumerate(val):
        original, copied = noisy.episode(int(index)), part.episode(row)
        for key in ("observations", "actions", "subgoals"):
            np.testing.assert_array_equal(copied[key], original[key])
    save_dataset(part, tmp_path / "val.npz")
    assert load_dataset(tmp_path / "val.npz").sha256 == part.sha256


# --------------------------------------------------------------------------------- CLI
def test_cli_generate_and_info(tmp_path):
    out = tmp_path / "cli" / "d.npz"
    result = subprocess.run(
        [sys.executable, "-m", "hier_envs.datasets", "grid", "--episodes", "12", "--epsilon", "0.05",
         "--seed", "5", "--out", str(out)],
        capture_output=True, text=True, check=True, timeout=120,
    )
    assert "sha256" in result.stdout and "episodes    12" in result.stdout
    loaded = load_dataset(out)
    assert loaded.metadata["generator"]["seed"] == 5 and loaded.metadata["generator"]["epsilon"] == 0.05
    assert loaded.metadata["sha256"] in result.stdout
    info = subprocess.run(
        [sys.executable, "-m", "hier_envs.datasets", "info", str(out)],
        capture_output=True, text=True, check=True, timeout=120,
    )
    assert loaded.metadata["sha256"] in info.stdout and '"schema_version": 1' in info.stdout


def test_cli_info_reports_corruption(tmp_path, capsys):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"PK\x03\x04 truncated")
    assert main(["info", str(path)]) == 1
    assert "broken.npz" in capsys.readouterr().out


def test_cli_keep_failures_in_process(tmp_path, capsys):
    out = tmp_path / "k.npz"
    assert main(["grid", "--episodes", "4", "--epsilon", "0.9", "--out", str(out), "--keep-failures",
                 "--no-progress", "--uncompressed"]) == 0
    assert load_dataset(out).metadata["generator"]["only_success"] is False
    assert "episodes    4" in capsys.readouterr().out


# ------------------------------------------------------------ review fixes (metadata digest, arguments)
@pytest.mark.parametrize(
    "change",
    [
        lambda m: m["generator"].update(epsilon=0.2),
        lambda m: m["generator"].update(seed=123),
        lambda m: m.update(env_id="HierGrid-v0"),
        lambda m: m["env_config"].update(tasks=[list(GRID_POSTTRAIN_TASK)]),
        lambda m: m.update(subgoal_labels="anything"),
        lambda m: m.update(extra_field=1),
    ],
)
def test_tampered_metadata_raises(saved, tmp_path, change):
    """SPEC B3: the metadata callers trust (generator config, seed, env id, …) is digested too."""

    def edit(arrays):
        metadata = json.loads(arrays["metadata"].item())
        change(metadata)
        arrays["metadata"] = np.array(json.dumps(metadata))

    path = tmp_path / "tampered_metadata.npz"
    rewrite(saved, path, edit)
    with pytest.raises(DatasetError, match=r"tampered_metadata\.npz: metadata_sha256 mismatch"):
        load_dataset(path)


def test_metadata_digest_skips_only_volatile_fields(saved, tmp_path):
    from hier_envs.datasets import VOLATILE_METADATA_KEYS, metadata_sha256

    metadata = load_dataset(saved).metadata
    assert metadata["metadata_sha256"] == metadata_sha256(metadata)
    assert set(VOLATILE_METADATA_KEYS) == {"created", "versions", "generation_seconds", "sha256", "metadata_sha256"}
    path = tmp_path / "volatile.npz"
    rewrite(saved, path, edit_metadata(created="2000-01-01T00:00:00+00:00", generation_seconds=1.0,
                                       versions={"numpy": "0"}))
    assert load_dataset(path).metadata["created"] == "2000-01-01T00:00:00+00:00"


def test_files_without_a_metadata_digest_load_on_their_arrays(saved, tmp_path):
    """Files written before metadata_sha256 existed still load (verified on the arrays only)."""
    from hier_envs.datasets import metadata_sha256

    def drop_digest(arrays):
        metadata = json.loads(arrays["metadata"].item())
        del metadata["metadata_sha256"]
        metadata["generator"]["epsilon"] = 0.5  # unverifiable in such a file
        arrays["metadata"] = np.array(json.dumps(metadata))

    path = tmp_path / "old.npz"
    rewrite(saved, path, drop_digest)
    old = load_dataset(path)
    assert "metadata_sha256" not in old.metadata and old.sha256 == load_dataset(saved).sha256
    save_dataset(old, tmp_path / "resaved.npz")  # re-saving adds the digest
    assert load_dataset(tmp_path / "resaved.npz").metadata["metadata_sha256"] == metadata_sha256(old.metadata)


def test_arrays_digest_is_unchanged():
    """The arrays' sha256 (quoted in docs, stored in existing files) is what it was for these arguments."""
    dataset = generate_grid_dataset(5, 0.0, seed=0, progress=False)
    assert dataset.sha256 == "8f2450966d9e6eb21d6378c10d6479f0362ff788b819c1cf3a53728b69741768"


@pytest.mark.parametrize("max_attempts", [0, -5, 2.5, True, "10"])
def test_max_attempts_must_be_a_positive_int(max_attempts):
    with pytest.raises(ValueError, match="max_attempts must be a positive int"):
        generate_grid_dataset(2, 0.0, seed=0, progress=False, max_attempts=max_attempts)


def test_too_few_attempts_message_fits_only_success():
    with pytest.raises(RuntimeError, match="only 1 of 3 episodes after max_attempts=1") as kept_all:
        generate_grid_dataset(3, 0.0, seed=0, progress=False, only_success=False, max_attempts=1)
    assert "only_success=False" in str(kept_all.value) and "lower the noise" not in str(kept_all.value)
    with pytest.raises(RuntimeError, match="of 3 successful episodes after max_attempts=2") as filtered:
        generate_grid_dataset(3, epsilon=1.0, seed=0, env_id="HierGrid-v0", progress=False, max_attempts=2)
    assert "lower the noise" in str(filtered.value)


@pytest.mark.parametrize("seed", [None, -1, 1.5, True, "0"])
def test_split_requires_a_seed(noisy, seed):
    """seed=None would give a different split on every call."""
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        noisy.split(0.25, seed=seed)


def test_dataset_provenance_records_digest_sizes_and_generation():
    """What a study's results.json records of each dataset: enough to check two runs used the same data."""
    from hier_envs.datasets import generate_grid_dataset

    dataset = generate_grid_dataset(5, 0.1, 3, progress=False)
    record = dataset.provenance()
    assert record["sha256"] == dataset.sha256 and (record["episodes"], record["steps"]) == (5, dataset.n_steps)
    assert record["env_id"] == "HierGrid-Pretrain-v0" and record["generation_seconds"] >= 0
    assert record["discarded_failures"] == dataset.metadata["counts"]["discarded_failures"]
    assert generate_grid_dataset(5, 0.1, 4, progress=False).provenance()["sha256"] != record["sha256"]
