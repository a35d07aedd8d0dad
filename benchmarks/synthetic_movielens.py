"""A seeded, MovieLens-25M-shaped synthetic dataset in the ML-25M CSV layout, at any size.

    .venv/bin/python benchmarks/synthetic_movielens.py OUT_FOLDER --ratings 25000000 [--seed 0]

Writes ratings.csv, movies.csv, links.csv and tags.csv exactly as GroupLens ships ML-25M (same headers, same
quoting, ratings sorted by user then movie), so `manage.py import_movielens OUT_FOLDER` reads it like a real
download. MovieLens files may not be redistributed; this gives benchmarks and demos the real release's shape
without its content:

- sizes scale from ML-25M (25,000,095 ratings, 162,541 users, 59,047 rated movies): users = ratings / 153.8,
  movies = 59,047 x (ratings / 25M) ** 0.6, so 100K ratings give ~650 users and ~2,150 movies, 25M the real counts
  (tiny sizes get at least 3 x ratings / movies users, so every user's ratings fit the catalogue);
- movie popularity is a Zipf-like law, 1 / (rank + 10) ** 1.05; user activity a shifted log-normal with at least 20
  ratings each (ML-25M's rule), capped at half the catalogue. Measured on the 25M dataset against ML-25M: the most
  rated movie has 0.36% of the ratings (0.33%), the 1% most rated movies 38%; users rate 20 / 77 / 154 / 17,331
  movies at the minimum / median / mean / maximum (20 / 71 / 154 / 32,202). The movie tail is thinner than the real
  one (the law gives every movie a fair chance): every movie is rated, the median one 109 times (ML-25M: 6);
- stars are half steps 0.5-5 from a movie quality + user leniency + noise model, quantised so their histogram
  matches ML-25M's (4.0 most common, then 3.0, 5.0, 3.5, ...), so there is signal for the recommender to learn;
- every movie has 1-3 of the 19 MovieLens genres (a few "(no genres listed)"), a year and a title, some with
  commas or quotes (CSV quoting); movie ids have gaps like the real ones; tags come at ML-25M's ratio (1 per 23).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ML25M_RATINGS, ML25M_USERS, ML25M_MOVIES = 25_000_095, 162_541, 59_047
GENRES = (
    "Action",
    "Adventure",
    "Animation",
    "Children",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "IMAX",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
# ML-25M's share of each half star, 0.5 .. 5.0.
STAR_SHARES = np.array([0.0157, 0.0319, 0.0160, 0.0664, 0.0503, 0.1956, 0.1305, 0.2659, 0.0848, 0.1429])
WORDS = (
    "Night",
    "Love",
    "Dead",
    "Last",
    "Man",
    "City",
    "Story",
    "Dark",
    "Return",
    "Blue",
    "House",
    "War",
    "King",
    "Secret",
    "Summer",
    "Girl",
    "Road",
    "Star",
    "Fire",
    "Time",
    "Game",
    "Heart",
    "Ghost",
    "River",
    "Dream",
)
TAGS = (
    "funny",
    "atmospheric",
    "classic",
    "twist ending",
    "dark comedy",
    "based on a book",
    "visually appealing",
    "sci-fi",
    "thought-provoking",
    "predictable",
    "great soundtrack",
    "slow",
    "must see",
    "overrated",
)
CHUNK_USERS = 20_000  # ratings.csv is written in blocks of users, so memory stays bounded


def default_sizes(n_ratings: int) -> tuple[int, int]:
    """(users, movies) for a dataset of n_ratings, following ML-25M's proportions."""
    movies = max(50, round(ML25M_MOVIES * (n_ratings / ML25M_RATINGS) ** 0.6))
    # Small sizes need more users than the proportion gives, or the users could not rate that many distinct movies.
    users = max(10, round(n_ratings * ML25M_USERS / ML25M_RATINGS), -(-3 * n_ratings // movies))
    return users, movies


def user_activity(rng: np.random.Generator, n_users: int, n_ratings: int, n_movies: int) -> np.ndarray:
    """Ratings per user: at least 20 (or what fits), log-normal tail, summing exactly to n_ratings."""
    floor = min(20, max(1, n_ratings // n_users))
    cap = max(floor, n_movies // 2)
    extra = rng.lognormal(mean=0.0, sigma=1.3, size=n_users)
    counts = floor + extra / extra.sum() * (n_ratings - floor * n_users)
    counts = np.minimum(np.floor(counts).astype(np.int64), cap)
    # Hand out what rounding and the cap left over, one rating at a time to users below the cap.
    missing = n_ratings - int(counts.sum())
    while missing > 0:
        room = np.flatnonzero(counts < cap)
        if len(room) == 0:
            raise ValueError(f"{n_ratings} ratings do not fit {n_users} users x {n_movies} movies")
        picked = rng.choice(room, size=min(missing, len(room)), replace=False)
        counts[picked] += 1
        missing -= len(picked)
    return counts


def movie_popularity(rng: np.random.Generator, n_movies: int) -> np.ndarray:
    """Sampling probabilities: Zipf-like in popularity rank, ranks shuffled over movie ids."""
    ranks = np.arange(1, n_movies + 1, dtype=np.float64)
    weights = 1.0 / (ranks + 10.0) ** 1.05
    return rng.permutation(weights / weights.sum())


def sample_block(rng: np.random.Generator, counts: np.ndarray, cdf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(user positions, movies) with counts[u] distinct movies per user, drawn by popularity, sorted by user and movie.

    Light raters: draw with replacement, drop repeats, top up the short ones, then keep a random counts[u] of
    each user's distinct draws (vectorised over the block). Heavy raters (a quarter of the catalogue or more):
    exact weighted sampling without replacement by Gumbel-top-k, one user at a time (there are few).
    """
    n_movies = len(cdf)
    log_weights = np.log(np.diff(cdf, prepend=0.0) + 1e-300)
    heavy = counts * 4 >= n_movies
    users_parts, movies_parts = [], []
    for user in np.flatnonzero(heavy).tolist():
        keys = log_weights - np.log(-np.log(rng.random(n_movies)))
        users_parts.append(np.full(counts[user], user, dtype=np.int64))
        movies_parts.append(np.argpartition(-keys, counts[user] - 1)[: counts[user]])
    light = np.flatnonzero(~heavy & (counts > 0))
    keys = np.zeros(0, dtype=np.int64)
    short = light
    while len(short):
        draws = counts[short] + counts[short] // 2 + 4
        users = np.repeat(short, draws)
        movies = np.searchsorted(cdf, rng.random(len(users)) * cdf[-1], side="right").clip(0, n_movies - 1)
        keys = np.union1d(keys, users * n_movies + movies)
        have = np.bincount(keys // n_movies, minlength=len(counts))
        short = light[have[light] < counts[light]]
    users, movies = keys // n_movies, keys % n_movies
    # Keep a random counts[u] of each user's distinct movies: rank each key within its user by a random priority.
    order = np.lexsort((rng.random(len(keys)), users))
    users, movies = users[order], movies[order]
    starts = np.searchsorted(users, users, side="left")
    keep = (np.arange(len(users)) - starts) < counts[users]
    users_parts.append(users[keep])
    movies_parts.append(movies[keep])
    users, movies = np.concatenate(users_parts), np.concatenate(movies_parts)
    order = np.lexsort((movies, users))
    return users[order], movies[order]


def star_quantiles() -> np.ndarray:
    return np.cumsum(STAR_SHARES)[:-1]


def generate(
    folder: Path,
    *,
    n_ratings: int,
    seed: int = 0,
    n_users: int | None = None,
    n_movies: int | None = None,
    tags: bool = True,
    log=print,
) -> dict:
    """Write the dataset; returns its counts. Deterministic for a given seed and sizes."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    default_users, default_movies = default_sizes(n_ratings)
    n_users, n_movies = n_users or default_users, n_movies or default_movies
    if n_users * n_movies < n_ratings * 2:
        raise ValueError(f"{n_ratings} ratings are too many for {n_users} users x {n_movies} movies")
    folder.mkdir(parents=True, exist_ok=True)

    # Movie ids with gaps, as in ML-25M (62,423 ids up to 209,171).
    movie_ids = np.sort(rng.choice(np.arange(1, n_movies * 3 + 2), size=n_movies, replace=False))
    years = rng.integers(1920, 2020, size=n_movies)
    _write_movies(folder, rng, movie_ids, years)

    popularity = movie_popularity(rng, n_movies)
    cdf = np.cumsum(popularity)
    quality = rng.normal(0.0, 0.55, size=n_movies) + 0.25 * np.log(popularity * n_movies)  # popular films rate higher
    counts = user_activity(rng, n_users, n_ratings, n_movies)
    leniency = rng.normal(0.0, 0.45, size=n_users)
    thresholds = None
    first_user_seconds = rng.integers(789_652_009, 1_574_327_703, size=n_users)  # ML-25M's timestamp range

    written = 0
    with open(folder / "ratings.csv", "w", newline="") as out:
        out.write("userId,movieId,rating,timestamp\n")
        for start in range(0, n_users, CHUNK_USERS):
            block = np.arange(start, min(start + CHUNK_USERS, n_users))
            block_counts = np.zeros_like(counts)
            block_counts[block] = counts[block]
            users_block, movies_block = sample_block(rng, block_counts, cdf)
            latent = quality[movies_block] + leniency[users_block] + rng.normal(0.0, 0.8, size=len(users_block))
            if thresholds is None:  # quantise against the first block's spread: ML-25M's star shares
                thresholds = np.quantile(latent, star_quantiles())
            stars = (np.searchsorted(thresholds, latent) + 1) / 2.0
            seconds = first_user_seconds[users_block] + rng.integers(0, 86_400 * 60, size=len(users_block))
            frame = pd.DataFrame(
                {"userId": users_block + 1, "movieId": movie_ids[movies_block], "rating": stars, "timestamp": seconds}
            )
            frame.to_csv(out, header=False, index=False, float_format="%.1f", lineterminator="\n")
            written += len(frame)
            log(f"  ratings.csv: {written:,} / {n_ratings:,} rows")

    n_tags = _write_tags(folder, rng, n_users, movie_ids, popularity, n_ratings // 23 if tags else 0)
    summary = {
        "ratings": written,
        "users": n_users,
        "movies": n_movies,
        "tags": n_tags,
        "seed": seed,
        "star_shares": STAR_SHARES.tolist(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    (folder / "synthetic.json").write_text(json.dumps(summary, indent=2))
    return summary


def _write_movies(folder: Path, rng: np.random.Generator, movie_ids: np.ndarray, years: np.ndarray) -> None:
    n_genres = rng.choice([0, 1, 2, 3], size=len(movie_ids), p=[0.01, 0.39, 0.35, 0.25])
    with (
        open(folder / "movies.csv", "w", newline="", encoding="utf-8") as movies,
        open(folder / "links.csv", "w", newline="") as links,
    ):
        movie_writer, link_writer = csv.writer(movies, lineterminator="\n"), csv.writer(links, lineterminator="\n")
        movie_writer.writerow(["movieId", "title", "genres"])
        link_writer.writerow(["movieId", "imdbId", "tmdbId"])
        for index, (movie_id, year, k) in enumerate(zip(movie_ids.tolist(), years.tolist(), n_genres.tolist())):
            words = " ".join(rng.choice(WORDS, size=int(rng.integers(1, 4))))
            title = f"{words} {index + 1}"
            if index % 17 == 0:
                title = f"{title}, The"  # MovieLens' "Title, The (year)" form; also needs CSV quoting
            elif index % 29 == 0:
                title = f'{title}: "Part {index % 5 + 1}"'
            genres = "|".join(sorted(rng.choice(GENRES, size=k, replace=False))) if k else "(no genres listed)"
            movie_writer.writerow([movie_id, f"{title} ({year})", genres])
            link_writer.writerow([movie_id, f"{100000 + movie_id * 7:07d}", movie_id * 3 if index % 50 else ""])


def _write_tags(
    folder: Path, rng: np.random.Generator, n_users: int, movie_ids: np.ndarray, popularity: np.ndarray, n_tags: int
) -> int:
    users = rng.integers(1, n_users + 1, size=n_tags)
    movies = movie_ids[rng.choice(len(movie_ids), size=n_tags, p=popularity)]
    texts = np.asarray(TAGS)[rng.integers(0, len(TAGS), size=n_tags)]
    frame = pd.DataFrame(
        {
            "userId": users,
            "movieId": movies,
            "tag": texts,
            "timestamp": rng.integers(1_135_429_210, 1_574_316_696, size=n_tags),
        }
    )
    frame = frame.drop_duplicates(["userId", "movieId", "tag"]).sort_values(["userId", "movieId"])
    frame.to_csv(folder / "tags.csv", index=False, lineterminator="\n")
    return len(frame)


def parse_count(text: str) -> int:
    """25000000, 25_000_000, 25M, 100k."""
    text = text.strip().lower().replace("_", "").replace(",", "")
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text[:-1] if factor > 1 else text) * factor)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--ratings", type=parse_count, default=parse_count("1M"), help="e.g. 100k, 1M, 25M")
    parser.add_argument("--users", type=int, help="default: scaled from ML-25M")
    parser.add_argument("--movies", type=int, help="default: scaled from ML-25M")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-tags", action="store_true")
    args = parser.parse_args(argv)
    try:
        summary = generate(
            args.folder,
            n_ratings=args.ratings,
            seed=args.seed,
            n_users=args.users,
            n_movies=args.movies,
            tags=not args.no_tags,
            log=lambda message: print(message, file=sys.stderr),
        )
    except ValueError as error:
        parser.error(str(error))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
