"""Import speed and peak memory of `manage.py import_movielens`, into SQLite and PostgreSQL, with PostgreSQL's own
COPY as the physical reference.

    .venv/bin/python benchmarks/import_scale.py DATA_FOLDER [--backend sqlite|postgresql] [--keep NAME]

Each run migrates a fresh database and times the whole command in its own process (wall time, and the kernel's
peak resident memory of that process). On PostgreSQL it then exports the imported ratings in COPY's binary format
and loads them back with plain COPY twice, committed: into a copy of the ratings table with the same indexes,
constraints and deferred foreign keys, and into a bare table with none. That is the floor for moving these rows
into PostgreSQL; the importer also reads and validates the CSV, maps ids, creates users, movies and tags, and
refreshes the movie statistics.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.measure import django_env, manage, postgres_database, postgres_drop, run_measured

COPY_BLOCK = 1 << 20


def run(*, data: Path, backend: str, workdir: Path, name: str, keep: bool = False, log=print) -> dict:
    """Import `data` into a fresh database; with keep, the database stays for the training benchmark."""
    workdir.mkdir(parents=True, exist_ok=True)
    if backend == "sqlite":
        path = workdir / f"{name}.sqlite3"
        for leftover in workdir.glob(f"{name}.sqlite3*"):
            leftover.unlink()
        url = f"sqlite:///{path}"
    elif backend == "postgresql":
        url = postgres_database(f"mnm_bench_{name}")
    else:
        raise ValueError(f"unknown backend {backend!r}")
    env = django_env(database_url=url, workdir=workdir)
    run_measured(manage("migrate", "--noinput", "-v", "0"), env=env)
    log(f"  importing {data} into {backend} ...")
    measured = run_measured(manage("import_movielens", str(data), "-v", "0"), env=env)
    result = {
        "backend": backend,
        "dataset": data.name,
        "command_seconds": round(measured.seconds, 2),
        "peak_rss_mb": round(measured.peak_rss_mb, 1),
        **_import_figures(backend, url),
    }
    result["ratings_per_second"] = round(result["ratings"] / measured.seconds)
    log(f"  {backend}: {result['ratings']:,} ratings in {measured}")
    if backend == "postgresql":
        result["copy_reference"] = copy_reference(url, workdir, log=log)
        result["seconds_vs_copy_same_table"] = round(
            measured.seconds / result["copy_reference"]["same_table_seconds"], 2
        )
    if not keep:
        if backend == "sqlite":
            for leftover in workdir.glob(f"{name}.sqlite3*"):
                leftover.unlink()
        else:
            postgres_drop(f"mnm_bench_{name}")
    result["database_url"] = url if keep else None
    return result


def _import_figures(backend: str, url: str) -> dict:
    query_run = "SELECT ratings_created + ratings_updated, users_created, movies_created, tags_created FROM movies_importrun ORDER BY id DESC LIMIT 1"
    if backend == "sqlite":
        path = url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as connection:
            ratings, users, movies, tags = connection.execute(query_run).fetchone()
        size = sum(p.stat().st_size for p in Path(path).parent.glob(Path(path).name + "*"))
    else:
        import psycopg

        with psycopg.connect(url) as connection:
            ratings, users, movies, tags = connection.execute(query_run).fetchone()
            size = connection.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    return {"ratings": ratings, "users": users, "movies": movies, "tags": tags, "database_mb": round(size / 2**20)}


def copy_reference(url: str, workdir: Path, log=print) -> dict:
    """Seconds for plain COPY of the same ratings (binary, prepared ids) into a same-shaped table and a bare one."""
    import psycopg

    dump = workdir / "ratings.pgcopy"
    with psycopg.connect(url) as connection:
        with (
            connection.cursor() as cursor,
            open(dump, "wb") as out,
            cursor.copy(
                "COPY (SELECT user_id, movie_id, score, rated_at FROM movies_rating) TO STDOUT (FORMAT BINARY)"
            ) as copy,
        ):
            out.writelines(copy)
        # The same table as Django made it: primary key, unique (user, movie), the secondary indexes, the check
        # constraint, and the two deferred foreign keys (LIKE copies all but the foreign keys).
        connection.execute("CREATE TABLE bench_copy_same (LIKE movies_rating INCLUDING ALL)")
        for number, (definition,) in enumerate(
            connection.execute(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'movies_rating'::regclass AND contype = 'f'"
            ).fetchall()
        ):
            connection.execute(f"ALTER TABLE bench_copy_same ADD CONSTRAINT bench_copy_fk_{number} {definition}")
        connection.execute(
            "CREATE TABLE bench_copy_bare (user_id bigint, movie_id bigint, score double precision, rated_at timestamptz)"
        )
        connection.commit()
    figures = {}
    try:
        for key, table in (("same_table_seconds", "bench_copy_same"), ("bare_table_seconds", "bench_copy_bare")):
            with psycopg.connect(url) as connection:
                started = time.perf_counter()
                with (
                    connection.cursor() as cursor,
                    open(dump, "rb") as source,
                    cursor.copy(
                        f"COPY {table} (user_id, movie_id, score, rated_at) FROM STDIN (FORMAT BINARY)"
                    ) as copy,
                ):
                    while block := source.read(COPY_BLOCK):
                        copy.write(block)
                connection.commit()  # deferred foreign-key checks run here
                figures[key] = round(time.perf_counter() - started, 2)
            log(f"  COPY into {table}: {figures[key]} s")
    finally:
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("DROP TABLE IF EXISTS bench_copy_same, bench_copy_bare")
        dump.unlink(missing_ok=True)
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--keep", metavar="NAME", help="keep the database (PostgreSQL: mnm_bench_NAME)")
    args = parser.parse_args(argv)
    if not args.data.exists():
        parser.error(f"{args.data} does not exist")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="mnm-import-"))
    result = run(
        data=args.data,
        backend=args.backend,
        workdir=workdir,
        name=args.keep or "import",
        keep=bool(args.keep),
        log=lambda message: print(message, file=sys.stderr),
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
