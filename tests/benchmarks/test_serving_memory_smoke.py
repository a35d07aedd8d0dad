"""The serving-memory benchmark at a tiny size (300 movies, 2 workers, 3 pages each), so it cannot rot."""

import pytest

from benchmarks import serving_memory


@pytest.mark.benchmark_smoke
def test_serving_memory_measures_both_modes(tmp_path):
    results = serving_memory.run(n_movies=300, workers=2, requests=3, workdir=tmp_path, log=lambda *_: None)

    assert results["movies"] == 300 and "item_item_kernel" in results["arrays"]  # the path exists at this size
    for mode in ("memory-mapped", "private"):
        assert len(results[mode]["workers"]) == 2 and results[mode]["requests"] % 6 == 0 < results[mode]["requests"]
        assert all(w["uss_mb"] > 0 and w["rss_mb"] >= w["uss_mb"] for w in results[mode]["workers"])
    assert all(w["cache_mapped_resident_mb"] > 0 for w in results["memory-mapped"]["workers"])
    assert all(w["cache_mapped_resident_mb"] == 0 for w in results["private"]["workers"])
