"""The synthetic MovieLens-25M-shaped generator: the real release's layout and shape, seeded, and importable."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest

from benchmarks.synthetic_movielens import STAR_SHARES, default_sizes, generate, parse_count


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic") / "ml-synthetic"
    return folder, generate(folder, n_ratings=60_000, seed=0, log=lambda _: None)


def test_files_have_the_ml25m_headers_and_quoting(dataset):
    folder, _ = dataset
    for name, header in {
        "ratings.csv": "userId,movieId,rating,timestamp",
        "movies.csv": "movieId,title,genres",
        "links.csv": "movieId,imdbId,tmdbId",
        "tags.csv": "userId,movieId,tag,timestamp",
    }.items():
        assert (folder / name).read_text().splitlines()[0] == header
    movies = list(csv.reader((folder / "movies.csv").open(newline="")))[1:]
    titles = [title for _, title, _ in movies]
    assert any(", The (" in title for title in titles)  # quoted, with a comma, as in "Matrix, The (1999)"
    assert all(title.endswith(")") and title[-5:-1].isdigit() for title in titles)
    assert any(genres == "(no genres listed)" for _, _, genres in movies)


def test_ratings_have_the_real_releases_shape(dataset):
    folder, summary = dataset
    ratings = pd.read_csv(folder / "ratings.csv")
    assert len(ratings) == summary["ratings"] == 60_000
    assert not ratings.duplicated(["userId", "movieId"]).any()
    assert ratings.equals(ratings.sort_values(["userId", "movieId"], kind="stable"))  # as GroupLens sorts them
    per_user = ratings.groupby("userId").size()
    assert per_user.min() >= 20 and per_user.max() > 5 * per_user.median()  # ML-25M's floor, and a heavy tail
    per_movie = ratings.groupby("movieId").size().sort_values(ascending=False)
    assert per_movie.iloc[: len(per_movie) // 100].sum() > 0.05 * len(ratings)  # the top 1% of movies: many ratings
    assert per_movie.median() < 0.7 * per_movie.mean()  # skewed: the typical movie is rated less than the average
    shares = ratings["rating"].value_counts(normalize=True).sort_index()
    assert list(shares.index) == [step / 2 for step in range(1, 11)]
    np.testing.assert_allclose(shares.to_numpy(), STAR_SHARES, atol=0.02)
    assert set(ratings["movieId"]) <= set(pd.read_csv(folder / "movies.csv")["movieId"])


def test_the_same_seed_gives_the_same_files_and_another_seed_others(tmp_path, dataset):
    folder, _ = dataset
    generate(tmp_path / "again", n_ratings=60_000, seed=0, log=lambda _: None)
    generate(tmp_path / "other", n_ratings=60_000, seed=1, log=lambda _: None)
    for name in ("ratings.csv", "movies.csv", "tags.csv"):
        assert (tmp_path / "again" / name).read_bytes() == (folder / name).read_bytes()
    assert (tmp_path / "other" / "ratings.csv").read_bytes() != (folder / "ratings.csv").read_bytes()


def test_sizes_follow_ml25m_and_tiny_sizes_still_fit():
    assert default_sizes(25_000_095) == (162_541, 59_047)
    users, movies = default_sizes(3_000)
    assert users * movies >= 3 * 3_000
    assert [parse_count(text) for text in ("25M", "100k", "1_000_000", "2.5m")] == [
        25_000_000,
        100_000,
        1_000_000,
        2_500_000,
    ]
    with pytest.raises(ValueError, match="too many"):
        generate(None, n_ratings=10_000, n_users=10, n_movies=50)  # type: ignore[arg-type]


@pytest.mark.django_db
def test_the_importer_reads_it_like_a_real_download(tmp_path):
    from movies.importer.load import movielens_import
    from movies.models import Movie, Rating, Tag

    summary = generate(tmp_path / "ml-synthetic", n_ratings=4_000, seed=2, log=lambda _: None)
    run = movielens_import(location=str(tmp_path / "ml-synthetic"))
    assert (run.ratings_created, run.movies_created, run.tags_created) == (
        summary["ratings"],
        summary["movies"],
        summary["tags"],
    )
    assert Rating.objects.count() == 4_000 and Tag.objects.count() == summary["tags"]
    assert Movie.objects.filter(title__startswith="The ").exists()  # "..., The (1994)" cleaned for display
    assert Movie.objects.exclude(imdb_id="").count() == summary["movies"]
