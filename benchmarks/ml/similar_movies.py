"""Are "similar movies" about the movie? Today's method against the liked co-occurrence table, on ML-100K.

    MOVIELENS_PATH=/path/to/ml-100k nice -n 10 .venv/bin/python benchmarks/ml/similar_movies.py
    .venv/bin/python benchmarks/ml/similar_movies.py --data /path/to/ml-100k --skip-vae   # table settings only

For every movie with at least 20 ratings, its top 8 similar movies are scored by
* genre share: the share of the 8 that have at least one genre in common with the movie (u.item's 19 flags);
  also for the 100 most rated movies alone;
* popularity: their mean rank by number of ratings (1 = most rated of the 1682), and the share of them that are
  among the 50 most rated movies.

Rows: "today" is cosine of the columns of a trained default VAE's output layer (what the serving model's
similar_items does without a table); the table rows are recommender.ml.similarity settings; "most rated" and
"random" are the two ends for reference.

Choice (recommender.ml.similarity defaults): phi, the correlation of the liked indicators, with shrinkage 10.
Criterion: the highest genre share, as long as the neighbours are movies people know (mean popularity rank under
600; random picks give about 840). Phi subtracts the co-likes that two movies' popularity alone explains, which
is the popularity correction the output-layer cosine lacks; shrinkage 10 to 100 changes its genre share by about
one point, so 10 is a safe round value rather than a fit to ML-100K. Subtracting disliked co-ratings lowered the
genre share for both phi and cosine, so it stays off by default.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from movielens import read_ratings

from recommender.ml import similarity

TOP = 8
MIN_RATINGS = 20
POPULAR_QUERIES = 100  # the genre share is also given for the 100 most rated movies, the ones people open most
BLOCKBUSTERS = 50  # share of the neighbours that are among the 50 most rated movies
SHOWCASE = {50: "Star Wars (1977)", 1: "Toy Story (1995)", 288: "Scream (1996)"}  # ML-100K ids

# name -> keyword arguments of similarity.similar_items_table
CANDIDATES: dict[str, dict] = {
    "phi, no shrinkage": {"measure": "phi", "shrinkage": 0.0},
    "phi, shrinkage 10": {"measure": "phi", "shrinkage": 10.0},
    "phi, shrinkage 50": {"measure": "phi", "shrinkage": 50.0},
    "phi, shrinkage 100": {"measure": "phi", "shrinkage": 100.0},
    "phi, shrinkage 10, dislikes 1": {"measure": "phi", "shrinkage": 10.0, "dislike_weight": 1.0},
    "cosine, no shrinkage": {"measure": "cosine", "shrinkage": 0.0},
    "cosine, shrinkage 10": {"measure": "cosine", "shrinkage": 10.0},
    "cosine, shrinkage 50": {"measure": "cosine", "shrinkage": 50.0},
    "cosine, shrinkage 10, dislikes 1": {"measure": "cosine", "shrinkage": 10.0, "dislike_weight": 1.0},
    "jaccard, shrinkage 10": {"measure": "jaccard", "shrinkage": 10.0},
    "lift, shrinkage 10": {"measure": "lift", "shrinkage": 10.0},
    "lift, shrinkage 50": {"measure": "lift", "shrinkage": 50.0},
}
CHOSEN = "phi, shrinkage 10"  # the defaults of similarity.similar_items_table


def read_items(directory: Path) -> tuple[list[str], np.ndarray]:
    """(titles, genre flags n_items x 19) from u.item, in ML-100K id order."""
    frame = pd.read_csv(directory / "u.item", sep="|", header=None, encoding="latin-1")
    return frame[1].tolist(), frame.iloc[:, 5:24].to_numpy(dtype=bool)


def today_neighbours(matrix, n: int) -> np.ndarray:
    """Top-n by cosine of the output-layer columns of a freshly trained value-blind default VAE, the model served
    before the table (computed here, as serving did without a table, so a stored table cannot sneak in)."""
    from recommender.ml import vae

    recommender = vae.to_recommender(vae.train(matrix, vae.preset("value-blind-2026-11")).model)
    head = "ranking_logits" if "ranking_logits_kernel" in recommender.weights else "rating"
    vectors = recommender.weights[f"{head}_kernel"].T.astype(np.float64)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    cosine = vectors @ vectors.T
    np.fill_diagonal(cosine, -np.inf)
    return np.argsort(-cosine, axis=1, kind="stable")[:, :n]


def scores(neighbours: np.ndarray, queries: np.ndarray, genres: np.ndarray, popularity_rank: np.ndarray) -> dict:
    shares, ranks, blockbusters, listed = [], [], [], []
    for item in queries:
        row = neighbours[item][neighbours[item] >= 0][:TOP]
        listed.append(len(row))
        if len(row) == 0:
            shares.append(np.nan)
            continue
        shares.append(np.mean((genres[row] & genres[item]).any(axis=1)))
        ranks.append(np.mean(popularity_rank[row]))
        blockbusters.append(np.mean(popularity_rank[row] <= BLOCKBUSTERS))
    shares = np.asarray(shares)
    popular_queries = popularity_rank[queries] <= POPULAR_QUERIES
    return {
        "genre_share": float(np.nanmean(shares)),
        "genre_share_popular": float(np.nanmean(shares[popular_queries])),
        "popularity_rank": float(np.mean(ranks)),
        "blockbuster_share": float(np.mean(blockbusters)),
        "listed": float(np.mean(listed)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("MOVIELENS_PATH"), help="the ml-100k folder")
    parser.add_argument("--skip-vae", action="store_true", help="leave out today's method (no training)")
    parser.add_argument("--seed", type=int, default=0, help="for the random reference row")
    args = parser.parse_args()
    if not args.data or not (Path(args.data) / "u.data").is_file():
        parser.error("give the ml-100k folder with --data or MOVIELENS_PATH")
    directory = Path(args.data)
    titles, genres = read_items(directory)
    matrix = read_ratings(directory / "u.data", shape=(943, len(titles)))
    counts = np.diff(matrix.tocsc().indptr)
    popularity_rank = np.empty(len(counts), dtype=np.int64)
    popularity_rank[np.argsort(-counts, kind="stable")] = np.arange(1, len(counts) + 1)
    queries = np.flatnonzero(counts >= MIN_RATINGS)

    rows: dict[str, np.ndarray] = {}
    timings: dict[str, float] = {}
    if not args.skip_vae:
        started = time.perf_counter()
        rows["today: VAE output-layer cosine"] = today_neighbours(matrix, TOP)
        timings["today: VAE output-layer cosine"] = time.perf_counter() - started
    for name, settings in CANDIDATES.items():
        started = time.perf_counter()
        rows[name] = similarity.similar_items_table(matrix, k=TOP, **settings)[0]
        timings[name] = time.perf_counter() - started
    most_rated = np.argsort(-counts, kind="stable")
    rows["reference: most rated"] = np.array(
        [[j for j in most_rated[: TOP + 1] if j != i][:TOP] for i in range(len(counts))]
    )
    rng = np.random.default_rng(args.seed)
    rows["reference: random"] = np.array(
        [rng.choice(np.delete(np.arange(len(counts)), i), TOP, replace=False) for i in range(len(counts))]
    )

    print(f"ML-100K, {len(queries)} movies with >= {MIN_RATINGS} ratings, top {TOP} similar movies each\n")
    print(
        f"| method | genre share | genre share, {POPULAR_QUERIES} most rated | mean popularity rank "
        f"| share in top {BLOCKBUSTERS} | listed | seconds |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, neighbours in rows.items():
        result = scores(neighbours, queries, genres, popularity_rank)
        seconds = f"{timings[name]:.1f}" if name in timings else ""
        print(
            f"| {name} | {result['genre_share']:.3f} | {result['genre_share_popular']:.3f} "
            f"| {result['popularity_rank']:.0f} | {result['blockbuster_share']:.3f} | {result['listed']:.1f} "
            f"| {seconds} |"
        )

    shown = [name for name in ("today: VAE output-layer cosine", CHOSEN) if name in rows]
    for movie_id, title in SHOWCASE.items():
        for name in shown:
            names = "; ".join(titles[j] for j in rows[name][movie_id - 1][:TOP] if j >= 0)
            print(f"\n{title}, {name}: {names}")


if __name__ == "__main__":
    main()
