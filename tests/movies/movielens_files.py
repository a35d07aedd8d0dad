"""Small synthetic MovieLens releases in every layout GroupLens ships, written to temporary folders.

Each has the quirks the real files have: Latin-1 titles in ML-100K and ML-1M, quoted titles with commas in
the CSV releases, half-star ratings, "(no genres listed)", trailing articles ("Matrix, The").
"""

from __future__ import annotations

import zipfile
from pathlib import Path

GENRES_100K = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
]


def _flags(*names: str) -> str:
    return "|".join("1" if genre in names else "0" for genre in GENRES_100K)


def write_100k(folder: Path, *, ratings: list[str] | None = None, items: list[str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.genre").write_text("".join(f"{g}|{i}\n" for i, g in enumerate(GENRES_100K)) + "\n")
    (folder / "u.occupation").write_text("administrator\nartist\nengineer\nstudent\n")
    toy_story_genres = _flags("Animation", "Children's", "Comedy")
    default_items = [
        f"1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)|{toy_story_genres}",
        f"2|Shawshank Redemption, The (1994)|01-Jan-1994||http://us.imdb.com/M/title-exact?Shawshank|{_flags('Drama')}",
        f"3|Misérables, Les (1995)|01-Jan-1995|||{_flags('Drama', 'War')}",
        f"4|unknown||||{_flags('unknown')}",
    ]
    (folder / "u.item").write_bytes(("\n".join(items or default_items) + "\n").encode("latin-1"))
    (folder / "u.user").write_text("1|24|M|engineer|85711\n2|53|F|artist|94043\n3|23|M|student|32067\n")
    default_ratings = [
        "1\t1\t5\t881250949",
        "1\t2\t3\t881250950",
        "2\t1\t4\t891717742",
        "2\t3\t1\t878887116",
        "3\t2\t2\t880606923",
    ]
    (folder / "u.data").write_text("\n".join(ratings or default_ratings) + "\n")
    return folder


def write_1m(folder: Path, *, ratings: list[str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    movies = [
        "1::Toy Story (1995)::Animation|Children's|Comedy",
        "2::Misérables, Les (1995)::Drama|Musical",
        "3::Heat (1995)::Action|Crime|Thriller",
    ]
    (folder / "movies.dat").write_bytes(("\n".join(movies) + "\n").encode("latin-1"))
    (folder / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    (folder / "ratings.dat").write_text(
        "\n".join(ratings or ["1::1::5::978300760", "1::3::3::978302109", "2::2::4::978301968"]) + "\n"
    )
    return folder


def write_10m(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "movies.dat").write_text(
        "1::Toy Story (1995)::Adventure|Animation|Children|Comedy|Fantasy\n2::Jumanji (1995)::Adventure|Children|Fantasy\n",
        encoding="utf-8",
    )
    (folder / "ratings.dat").write_text("1::1::4.5::838985046\n1::2::3::838983525\n2::1::0.5::838983421\n")
    (folder / "tags.dat").write_text("1::2::board game::1139045764\n2::1::pixar::1137206825\n")
    return folder


def write_csv(
    folder: Path, *, ratings: list[str] | None = None, movies: list[str] | None = None, tags: bool = True
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    default_movies = [
        "movieId,title,genres",
        "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy",
        '11,"American President, The (1995)",Comedy|Drama|Romance',
        '12,"Dracula: Dead and Loving It (1995)",Comedy|Horror',
        "13,Some Documentary,(no genres listed)",
        '14,"Amélie (Fabuleux destin d\'Amélie Poulain, Le) (2001)",Comedy|Romance',
    ]
    (folder / "movies.csv").write_text("\n".join(movies or default_movies) + "\n", encoding="utf-8")
    (folder / "links.csv").write_text(
        "movieId,imdbId,tmdbId\n1,0114709,862\n11,0112346,9087\n12,0112896,\n13,0000001,5\n14,0211915,194\n"
    )
    default_ratings = [
        "userId,movieId,rating,timestamp",
        "1,1,4.0,964982703",
        "1,11,3.5,964981247",
        "2,12,0.5,964982224",
        "2,14,5.0,964983815",
        "3,1,2.5,964982931",
    ]
    (folder / "ratings.csv").write_text("\n".join(ratings or default_ratings) + "\n")
    if tags:
        (folder / "tags.csv").write_text(
            'userId,movieId,tag,timestamp\n2,14,"quirky, french",1445714994\n4,1,pixar,1445714996\n'
        )
    return folder


def zip_folder(folder: Path, archive: Path) -> Path:
    """Zip a release the way GroupLens does: every file under one top-level folder."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for path in sorted(folder.iterdir()):
            out.write(path, f"{folder.name}/{path.name}")
    return archive
