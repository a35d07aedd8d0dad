"""The HTTP load benchmark at a tiny size (synthetic data, one epoch, two seconds a page), so it cannot rot."""

import functools
import os
import shutil
import sqlite3

import pytest

from benchmarks import http_load
from benchmarks.synthetic_movielens import generate


@pytest.mark.benchmark_smoke
def test_http_load_measures_every_page_without_errors(tmp_path):
    if shutil.which("wrk") is None:
        if os.environ.get("CI"):
            pytest.fail("wrk is not installed (CI must install it: apt-get install wrk)")
        pytest.skip("wrk is not installed: apt-get install wrk")
    # 30 users x 100 ratings: one of them is a logged-in user with about 100 ratings, as at full size.
    generate(tmp_path / "data", n_ratings=3000, n_users=30, seed=0, log=lambda *_: None)

    results = http_load.run(
        data=tmp_path / "data", workdir=tmp_path / "site", epochs=1, connections=2, duration=2, log=lambda *_: None
    )

    assert set(results["pages"]) == {
        "static file",
        "guest home",
        "guest genre page",
        "recommendations",
        "movie page (guest)",
        "movie page (member)",
        "catalogue (member)",
        "my ratings",
    }
    for name, page in results["pages"].items():
        assert page["requests"] > 0, name
        assert page["errors"] == 0 and page["non_2xx"] == 0, (name, page)
        assert 0 < page["p50_ms"] <= page["p95_ms"] <= page["p99_ms"], (name, page)
        assert page["rps"] > 0, name
    assert results["worker_rss_mb"] > 0 and results["worker_uss_mb"] > 0
    assert results["tensorflow_in_workers"] is False
    assert results["workers"] == 2
    # The recommendations page was loaded as a user who has rated enough for personal recommendations.
    assert results["recommendations_user"]["ratings"] >= 20

    # --reuse loads the same site again without importing or training: one model version, the same member.
    reuse = functools.partial(http_load.run, epochs=1, connections=2, duration=1, reuse=True, log=lambda *_: None)
    again = reuse(data=tmp_path / "absent", workdir=tmp_path / "site")
    assert again["reused_site"] is True and again["recommendations_user"] == results["recommendations_user"]
    assert all(page["errors"] == 0 and page["non_2xx"] == 0 for page in again["pages"].values())
    with sqlite3.connect(tmp_path / "site" / "db.sqlite3") as database:
        assert database.execute("SELECT COUNT(*) FROM recommender_modelversion").fetchone() == (1,)
    with pytest.raises(ValueError, match="holds no site to reuse"):
        reuse(data=tmp_path / "data", workdir=tmp_path / "empty")
