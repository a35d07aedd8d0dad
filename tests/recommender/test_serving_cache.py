"""The serving cache: weights unpacked once per machine, verified, and memory-mapped read-only by every process."""

import gc
import io
import json
import logging
import multiprocessing
import os

import numpy as np
import pytest

from benchmarks.ml.latency import random_weights
from recommender import artifacts, serving_cache
from recommender.ml.inference import VAERecommender, save_weights
from recommender.models import ModelVersion
from recommender.recommendations import _because, load_model_version, registry
from tests.movies.factories import MovieFactory

N_MOVIES = 30


@pytest.fixture(autouse=True)
def cache_dir(settings, tmp_path):
    settings.RECOMMENDER_SERVING_CACHE_DIR = str(tmp_path / "serving-cache")
    return tmp_path / "serving-cache"


@pytest.fixture
def downloads(monkeypatch):
    """Counts the artifact downloads (each one is an unpacking of the cache)."""
    calls = []
    real = artifacts.artifact_download

    def counting(**kwargs):
        calls.append(kwargs["folder"])
        return real(**kwargs)

    monkeypatch.setattr(artifacts, "artifact_download", counting)
    return calls


def weights_for(seed: int = 0) -> dict:
    weights = random_weights(N_MOVIES, (16,), 8, item_item=True)
    weights["z_mean_bias"] = np.random.default_rng(seed).normal(0, 0.1, 8).astype(np.float32)
    return weights


def store(weights: dict, version_id: int) -> tuple[str, str]:
    """The weights as a version's artifact in storage: (folder, SHA-256)."""
    buffer = io.BytesIO()
    save_weights(weights, buffer)
    folder = artifacts.artifact_folder(version_id)
    return folder, artifacts.artifact_write(folder=folder, name=artifacts.SERVING_WEIGHTS, content=buffer.getvalue())


def open_cached(cache_dir, version_id: int, folder: str, sha256: str) -> dict:
    return serving_cache.serving_weights_open(
        root=cache_dir, version_id=version_id, artifact_folder=folder, artifact_sha256=sha256
    )


def version_folders(cache_dir) -> list[str]:
    return sorted(entry.name for entry in cache_dir.iterdir() if entry.is_dir())


def test_the_cache_is_written_once_and_reused(cache_dir, downloads):
    folder, sha256 = store(weights_for(), 7)
    first = open_cached(cache_dir, 7, folder, sha256)
    manifest = cache_dir / f"7-{sha256[:16]}" / serving_cache.MANIFEST
    written_at = manifest.stat().st_mtime_ns
    second = open_cached(cache_dir, 7, folder, sha256)

    assert downloads == [folder] and manifest.stat().st_mtime_ns == written_at
    assert version_folders(cache_dir) == [f"7-{sha256[:16]}"]
    files = json.loads(manifest.read_text())["files"]
    assert set(files) == set(weights_for()) and all(len(entry["sha256"]) == 64 for entry in files.values())
    for name, array in weights_for().items():
        np.testing.assert_array_equal(first[name], array)
        np.testing.assert_array_equal(second[name], array)


def test_arrays_are_read_only_memory_maps_and_serving_never_writes_to_them(cache_dir):
    folder, sha256 = store(weights_for(), 1)
    arrays = open_cached(cache_dir, 1, folder, sha256)
    assert all(isinstance(array, np.memmap) and not array.flags.writeable for array in arrays.values())
    with pytest.raises(ValueError, match="read-only"):
        arrays["ranking_logits_kernel"][0, 0] = 1.0

    model = VAERecommender(arrays)
    assert all(np.shares_memory(model.weights[name], arrays[name]) for name in arrays if arrays[name].size)
    # Every serving path on the maps (a write to a weight would raise).
    model.recommend({0: 5.0, 3: 1.0, 7: 3.5}, n=10)
    model.similar_items(2, n=5)
    model.item_embeddings()
    _because(model, [1, 2, 4], [0, 3])


def test_recommendations_from_the_memory_maps_equal_the_in_memory_model(cache_dir):
    weights = weights_for()
    folder, sha256 = store(weights, 1)
    in_memory, mapped = VAERecommender(weights), VAERecommender(open_cached(cache_dir, 1, folder, sha256))
    rng = np.random.default_rng(3)
    for _ in range(20):
        items = rng.choice(N_MOVIES, 6, replace=False)
        ratings = {int(i): float(s) for i, s in zip(items, rng.choice(np.arange(1, 11) / 2, 6))}
        assert mapped.recommend(ratings, n=12) == in_memory.recommend(ratings, n=12)
        for mine, theirs in zip(mapped.forward(ratings), in_memory.forward(ratings)):
            np.testing.assert_array_equal(mine, theirs)
    assert mapped.similar_items(5, n=8) == in_memory.similar_items(5, n=8)
    assert _because(mapped, [1, 2, 4], [0, 3]) == _because(in_memory, [1, 2, 4], [0, 3])


def flip_a_byte(path) -> None:
    content = bytearray(path.read_bytes())
    content[-3] ^= 0x40
    path.write_bytes(bytes(content))


def truncate(path) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size - 16)


@pytest.mark.parametrize("damage", [flip_a_byte, truncate], ids=["flipped byte", "truncated"])
def test_a_damaged_cache_file_is_detected_and_rewritten_from_the_artifact(cache_dir, downloads, damage, caplog):
    weights = weights_for()
    folder, sha256 = store(weights, 3)
    arrays = open_cached(cache_dir, 3, folder, sha256)
    del arrays  # this process lets go of the maps before the file changes under them
    gc.collect()
    damage(cache_dir / f"3-{sha256[:16]}" / "rating_kernel.npy")

    with caplog.at_level(logging.WARNING, logger="recommender"):
        arrays = open_cached(cache_dir, 3, folder, sha256)

    assert len(downloads) == 2 and "damaged" in caplog.text
    np.testing.assert_array_equal(arrays["rating_kernel"], weights["rating_kernel"])
    assert version_folders(cache_dir) == [f"3-{sha256[:16]}"]  # the damaged copy and the staging folder are gone


def test_a_wrong_artifact_checksum_refuses_to_serve(cache_dir):
    folder, _ = store(weights_for(), 4)
    wrong = "0" * 64
    with pytest.raises(artifacts.ArtifactBroken, match="corrupt"):
        open_cached(cache_dir, 4, folder, wrong)
    with pytest.raises(artifacts.ArtifactBroken, match="no recorded checksum"):
        open_cached(cache_dir, 4, folder, None)
    assert version_folders(cache_dir) == []  # nothing unpacked, no staging folder left


def _race(cache_dir, folder, sha256, barrier, results) -> None:
    barrier.wait()
    arrays = open_cached(cache_dir, 5, folder, sha256)
    results.put(float(np.asarray(arrays["z_mean_kernel"], dtype=np.float64).sum()))


def test_processes_racing_end_with_one_valid_folder(cache_dir, tmp_path, monkeypatch):
    folder, sha256 = store(weights_for(), 5)
    log = tmp_path / "downloads.log"
    real = artifacts.artifact_download

    def logged(**kwargs):
        with open(log, "a") as handle:
            handle.write(f"{os.getpid()}\n")
        return real(**kwargs)

    monkeypatch.setattr(artifacts, "artifact_download", logged)
    context = multiprocessing.get_context("fork")  # the children inherit the in-memory storage and the settings
    barrier, results = context.Barrier(4), context.Queue()
    workers = [context.Process(target=_race, args=(cache_dir, folder, sha256, barrier, results)) for _ in range(4)]
    for worker in workers:
        worker.start()
    sums = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)

    assert [worker.exitcode for worker in workers] == [0] * 4
    assert len(set(sums)) == 1 and sums[0] == pytest.approx(weights_for()["z_mean_kernel"].sum(dtype=np.float64))
    assert len(log.read_text().split()) == 1  # one process downloaded and unpacked; the others waited and mapped
    assert version_folders(cache_dir) == [f"5-{sha256[:16]}"]
    assert open_cached(cache_dir, 5, folder, sha256) is not None


def test_pruning_keeps_the_current_and_the_previous_version(cache_dir):
    names = []
    for version_id in (1, 2, 3):
        folder, sha256 = store(weights_for(version_id), version_id)
        open_cached(cache_dir, version_id, folder, sha256)
        names.append(serving_cache.folder_name(version_id, sha256))
        os.utime(cache_dir / names[-1], ns=(version_id * 10**9, version_id * 10**9))  # unpacked in this order
    (cache_dir / f"{serving_cache.STAGING_PREFIX}crashed").mkdir()

    removed = serving_cache.serving_cache_prune(root=cache_dir, current=names[2])

    assert removed == sorted([names[0], f"{serving_cache.STAGING_PREFIX}crashed"])
    assert version_folders(cache_dir) == sorted(names[1:])


# ------------------------------------------------------------------------------------------- through the registry


def publish(weights: dict, movies: list, *, active: bool = True) -> ModelVersion:
    version = ModelVersion.objects.create(status=ModelVersion.Status.READY)
    folder, sha256 = store(weights, version.pk)
    index = json.dumps({"movie_ids": [movie.pk for movie in movies]}).encode()
    version.artifact_path = folder
    version.artifact_sha256 = {
        artifacts.SERVING_WEIGHTS: sha256,
        artifacts.MOVIE_INDEX: artifacts.artifact_write(folder=folder, name=artifacts.MOVIE_INDEX, content=index),
    }
    if active:
        ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).update(status=ModelVersion.Status.READY)
        version.status = ModelVersion.Status.ACTIVE
    version.save()
    return version


@pytest.fixture
def movies(db):
    return [MovieFactory(title=f"Cached {i:02d}") for i in range(N_MOVIES)]


def test_the_registry_serves_the_memory_mapped_model_and_prunes_old_versions(movies, cache_dir):
    first = publish(weights_for(1), movies)
    loaded = registry.current()
    assert loaded.version_id == first.pk and loaded.cache_folder in version_folders(cache_dir)
    assert isinstance(loaded.recommender.weights["z_mean_kernel"].base, np.memmap)

    second = publish(weights_for(2), movies)
    assert registry.current().version_id == second.pk and len(version_folders(cache_dir)) == 2
    os.utime(cache_dir / loaded.cache_folder, ns=(10**9, 10**9))  # the first was unpacked before the second
    third = publish(weights_for(3), movies)
    assert registry.current().version_id == third.pk
    assert loaded.cache_folder not in version_folders(cache_dir) and len(version_folders(cache_dir)) == 2


def test_a_corrupt_artifact_is_taken_out_of_service_even_with_a_valid_local_copy(movies, cache_dir):
    version = publish(weights_for(), movies)
    assert registry.current().version_id == version.pk  # unpacked and verified
    path = version.artifact(artifacts.SERVING_WEIGHTS)
    artifacts.default_storage.delete(path)
    artifacts.default_storage.save(path, io.BytesIO(b"not the weights"))
    registry.reset()  # a process starting after the file broke

    assert registry.current() is None
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.FAILED and "corrupt" in version.error


def test_without_a_cache_folder_each_process_loads_a_private_copy(movies, cache_dir, settings):
    settings.RECOMMENDER_SERVING_CACHE_DIR = ""
    weights = weights_for()
    version = publish(weights, movies)
    loaded = load_model_version(version)
    assert loaded.cache_folder is None and not cache_dir.exists()
    assert loaded.recommender.recommend({0: 5.0}, n=5) == VAERecommender(weights).recommend({0: 5.0}, n=5)


def test_an_unusable_cache_folder_falls_back_to_a_private_copy(movies, cache_dir, settings, caplog):
    cache_dir.parent.joinpath("a-file").write_text("")
    settings.RECOMMENDER_SERVING_CACHE_DIR = str(cache_dir.parent / "a-file" / "cache")  # cannot be created
    version = publish(weights_for(), movies)
    with caplog.at_level(logging.WARNING, logger="recommender"):
        loaded = registry.current()
    assert loaded.version_id == version.pk and loaded.cache_folder is None and "private copy" in caplog.text
