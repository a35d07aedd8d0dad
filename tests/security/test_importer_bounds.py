"""Security issue 13, item 4: the importer's bounds. A zip bomb, a damaged archive, a huge line or an impossible id is
refused before it costs memory, with the file and line and a short message, and the database is left as it was."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from movies.importer import DatasetError
from movies.importer.bounded import BoundedReader
from movies.models import ImportRun, Tag
from tests.movies.movielens_files import write_10m, write_100k, write_csv, zip_folder
from tests.movies.test_importer import snapshot

pytestmark = pytest.mark.django_db

LONG_LINE = "1\t1\t5\t" + "9" * 100_000  # a 100 KB line, over the 64 KiB bound


def import_command(path: Path) -> str:
    """Run `manage.py import_movielens PATH`; return the error message it ends with (it must end with one)."""
    with pytest.raises(CommandError) as caught:
        call_command("import_movielens", str(path), stdout=io.StringIO(), stderr=io.StringIO())
    message = str(caught.value)
    assert message.endswith("\nNothing was imported: the database is as it was before.")
    first_line = message.splitlines()[0]
    assert len(first_line) < 300, first_line  # never the whole bad line
    return first_line


@pytest.fixture
def catalogue(tmp_path):
    """A good ML-100K already imported: each refusal below must leave exactly this."""
    call_command("import_movielens", str(write_100k(tmp_path / "good" / "ml-100k")), stdout=io.StringIO())
    before = snapshot()
    assert before["ratings"] and ImportRun.objects.count() == 1
    return before


def assert_unchanged(before: dict) -> None:
    assert snapshot() == before
    assert ImportRun.objects.count() == 1


def release_zip(tmp_path: Path, *, ratings: list[str] | None = None, compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """ML-100K zipped as GroupLens ships it, u.data last so tests can damage its data at the end of the archive."""
    folder = write_100k(tmp_path / "src" / "ml-100k", ratings=ratings)
    archive = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(archive, "w", compression) as out:
        for path in sorted(folder.iterdir(), key=lambda p: p.name == "u.data"):
            out.write(path, f"ml-100k/{path.name}")
    return archive


def member_data_offset(archive: Path, name: str) -> tuple[int, int]:
    """Where a member's (compressed) data starts in the archive, and its length."""
    with zipfile.ZipFile(archive) as opened:
        info = opened.getinfo(name)
    raw = archive.read_bytes()
    name_length, extra_length = struct.unpack("<HH", raw[info.header_offset + 26 : info.header_offset + 30])
    return info.header_offset + 30 + name_length + extra_length, info.compress_size


# ------------------------------------------------------------------------------------------- sizes and ratio


def test_a_zip_bomb_is_refused_before_a_byte_is_inflated(tmp_path, catalogue):
    # 50 MB of zeros deflate to about 50 KB (1000:1); real MovieLens files compress 3-5:1.
    folder = write_100k(tmp_path / "src" / "ml-100k")
    archive = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for path in sorted(folder.iterdir()):
            if path.name != "u.data":
                out.write(path, f"ml-100k/{path.name}")
        with out.open("ml-100k/u.data", "w") as bomb:
            for _ in range(50):
                bomb.write(bytes(1 << 20))
    assert archive.stat().st_size < 200_000

    message = import_command(archive)

    assert message.startswith("u.data: ") and "compression ratio" in message and "200:1" in message
    assert_unchanged(catalogue)


def test_declared_sizes_over_the_bounds_are_refused(tmp_path, catalogue, settings):
    archive = zip_folder(write_100k(tmp_path / "src" / "ml-100k"), tmp_path / "ml-100k.zip")

    settings.MOVIELENS_MAX_FILE_BYTES = 300  # u.item is 381 bytes, the other files less than 300
    message = import_command(archive)
    assert message == "u.item: 381 bytes, more than the 300-byte limit (MOVIELENS_MAX_FILE_BYTES)"
    assert "MOVIELENS_MAX_FILE_BYTES" in message

    settings.MOVIELENS_MAX_FILE_BYTES = 10_000
    settings.MOVIELENS_MAX_UNCOMPRESSED_BYTES = 500
    message = import_command(archive)
    assert message.startswith("ml-100k.zip: ") and "MOVIELENS_MAX_UNCOMPRESSED_BYTES" in message
    assert_unchanged(catalogue)


def test_files_read_whole_have_their_own_bound(tmp_path, catalogue, settings):
    settings.MOVIELENS_MAX_LOADED_FILE_BYTES = 300  # u.item (381 bytes) is read whole
    message = import_command(write_100k(tmp_path / "ml-100k"))
    assert message == "u.item: 381 bytes, more than the 300-byte limit (MOVIELENS_MAX_LOADED_FILE_BYTES)"
    assert_unchanged(catalogue)


def test_a_member_that_inflates_past_its_declared_size_is_stopped():
    # zipfile itself cuts a member at its declared size (then fails its CRC); the bound holds for any stream.
    stream = io.BytesIO(b"1\t1\t5\t881250949\n" * 10)
    reader = BoundedReader(stream, "u.data", max_bytes=50, limit="its declared size")
    with pytest.raises(DatasetError, match=r"^u\.data, line 4: more than its declared size"):
        reader.read()


@pytest.mark.parametrize("read_size", [1, 2, 3, 7, 10, 11, 12, 25, 1000])
def test_every_line_is_measured_whatever_the_reads(read_size):
    fits = b"a\n" + b"x" * 10 + b"\n\n" + b"y" * 9 + b"\r\n" + b"z" * 10  # lines of at most 10 bytes
    for data, line in [(fits, None), (fits + b"\n" + b"w" * 11 + b"\nb\n", 6), (b"q\n" * 6 + b"v" * 11, 7)]:
        reader = BoundedReader(io.BytesIO(data), "u.data", max_bytes=100, limit="a limit", max_line_bytes=10)
        buffer, read = bytearray(read_size), b""
        if line is None:
            while n := reader.readinto(memoryview(buffer)):
                read += buffer[:n]
            assert read == data and reader.lines == data.count(b"\n")
            continue
        with pytest.raises(DatasetError, match=rf"^u\.data, line {line}: line longer than 10 bytes$"):
            while reader.readinto(memoryview(buffer)):
                pass


# ------------------------------------------------------------------------------------------- damaged archives


def test_a_bad_crc_names_the_file(tmp_path, catalogue):
    archive = release_zip(tmp_path, compression=zipfile.ZIP_STORED)
    start, _ = member_data_offset(archive, "ml-100k/u.data")
    raw = bytearray(archive.read_bytes())
    raw[start] ^= 0x01  # '1' becomes '0': still a number, but the CRC no longer matches
    archive.write_bytes(bytes(raw))

    message = import_command(archive)

    assert message.startswith("u.data, line ") and "damaged archive" in message and "CRC" in message
    assert_unchanged(catalogue)


def test_a_damaged_deflate_stream_names_the_file(tmp_path, catalogue):
    archive = release_zip(tmp_path)
    start, _ = member_data_offset(archive, "ml-100k/u.data")
    raw = bytearray(archive.read_bytes())
    raw[start] = 0xFF  # block type 3, which deflate reserves: zlib.error "invalid block type"
    archive.write_bytes(bytes(raw))

    message = import_command(archive)

    assert message.startswith("u.data, line 1: damaged archive")
    assert_unchanged(catalogue)


def test_a_member_cut_short_names_the_file(tmp_path, catalogue):
    # The archive ends in the middle of u.data's deflate stream (its central directory moved in front, as the zip
    # format allows): reading runs out of data, zipfile raises EOFError.
    ratings = [f"{1 + i % 3}\t{1 + i % 4}\t{1 + i % 5}\t88125{i:04d}" for i in range(3000)]
    archive = release_zip(tmp_path, ratings=ratings)
    raw = archive.read_bytes()
    start, length = member_data_offset(archive, "ml-100k/u.data")
    end_record = raw.rindex(b"PK\x05\x06")
    entries, directory_size, directory_offset = struct.unpack("<HII", raw[end_record + 10 : end_record + 20])
    directory = bytearray(raw[directory_offset : directory_offset + directory_size])
    shift = directory_size + 22  # the local entries now follow the central directory and the end record
    position = 0
    for _ in range(entries):
        (offset,) = struct.unpack("<I", directory[position + 42 : position + 46])
        directory[position + 42 : position + 46] = struct.pack("<I", offset + shift)
        lengths = struct.unpack("<HHH", directory[position + 28 : position + 34])
        position += 46 + sum(lengths)
    entries_data = raw[: start + length // 2]
    end = raw[end_record : end_record + 12] + struct.pack("<IIH", directory_size, 0, len(entries_data))
    archive.write_bytes(bytes(directory) + end + entries_data)

    message = import_command(archive)

    assert message.startswith("u.data, line ") and "damaged archive" in message
    assert_unchanged(catalogue)


def test_a_zip_missing_a_piece_is_refused(tmp_path, catalogue):
    archive = zip_folder(write_100k(tmp_path / "src" / "ml-100k"), tmp_path / "ml-100k.zip")
    raw = archive.read_bytes()
    archive.write_bytes(raw[:100] + raw[400:])  # its end record is intact, so it still looks like a zip

    message = import_command(archive)

    assert message.startswith("u.") and "damaged archive" in message
    assert_unchanged(catalogue)


def test_a_zip_with_a_damaged_directory_is_refused(tmp_path, catalogue):
    archive = zip_folder(write_100k(tmp_path / "src" / "ml-100k"), tmp_path / "ml-100k.zip")
    raw = bytearray(archive.read_bytes())
    raw[raw.index(b"PK\x01\x02")] = ord("X")  # the central directory's first entry loses its signature
    archive.write_bytes(bytes(raw))

    message = import_command(archive)

    assert message.startswith("ml-100k.zip: damaged archive (") and message.endswith("download it again")
    assert_unchanged(catalogue)


def test_a_file_named_zip_that_is_not_one(tmp_path, catalogue):
    (tmp_path / "ml-100k.zip").write_bytes(b"<html>Not found</html>" * 10)

    message = import_command(tmp_path / "ml-100k.zip")

    assert "ml-100k.zip" in message and "not a zip archive" in message and "damaged or cut short" in message
    assert_unchanged(catalogue)


# ------------------------------------------------------------------------------------------- lines


@pytest.mark.parametrize("zipped", [False, True], ids=["folder", "zip"])
def test_a_huge_rating_line_is_refused_without_echoing_it(tmp_path, catalogue, zipped):
    folder = write_100k(tmp_path / "ml-100k", ratings=["1\t1\t5\t881250949", "1\t2\t3\t881250950", LONG_LINE])
    path = zip_folder(folder, tmp_path / "ml-100k.zip") if zipped else folder

    message = import_command(path)

    assert message == "u.data, line 3: line longer than 1,024 bytes"  # the bound for ratings lines
    assert_unchanged(catalogue)


def test_a_quote_cannot_join_rating_lines_into_one(tmp_path):
    ratings = ["userId,movieId,rating,timestamp", "1,1,4.0,964982703", '1,11,"3.5,964981247', *["2,12,0.5,1"] * 50]
    message = import_command(write_csv(tmp_path / "ml-latest-small", ratings=ratings))
    assert message.startswith("ratings.csv, line 3: rating")
    assert not ImportRun.objects.exists()


@pytest.mark.parametrize(
    ("file", "content", "expected"),
    [
        ("movies.csv", "movieId,title,genres\n1,Toy Story (1995),Comedy\n2,{long},Drama\n", "movies.csv, line 3"),
        ("links.csv", "movieId,imdbId,tmdbId\n{long}\n", "links.csv, line 2"),
        ("tags.csv", "userId,movieId,tag,timestamp\n2,14,{long},1445714994\n", "tags.csv, line 2"),
        ("movies.csv", "{long}\n", "movies.csv, line 1"),
    ],
)
def test_a_huge_line_in_any_file_is_refused(tmp_path, file, content, expected):
    folder = write_csv(tmp_path / "ml-latest-small")
    (folder / file).write_text(content.format(long="x" * 100_000))

    message = import_command(folder)

    assert message == f"{expected}: line longer than 65,536 bytes"
    assert not ImportRun.objects.exists()


def test_a_huge_movie_line_in_ml100k(tmp_path, catalogue):
    folder = write_100k(tmp_path / "ml-100k")
    with (folder / "u.item").open("ab") as items:
        items.write(b"5|" + b"x" * 100_000 + b"\n")

    assert import_command(folder) == "u.item, line 5: line longer than 65,536 bytes"
    assert_unchanged(catalogue)


def test_long_tags_are_cut_as_they_are_read(tmp_path):
    # Tags are read in batches of 50,000: each is cut to the column's 500 characters before it joins one.
    folder = write_csv(tmp_path / "ml-latest-small")
    (folder / "tags.csv").write_text(f"userId,movieId,tag,timestamp\n2,14,{'t' * 60_000},1445714994\n")

    call_command("import_movielens", str(folder), stdout=io.StringIO())

    assert [len(text) for text in Tag.objects.values_list("text", flat=True)] == [500]


def test_a_bad_byte_in_a_streamed_tags_file_is_refused(tmp_path):
    folder = write_10m(tmp_path / "ml-10m")
    (folder / "tags.dat").write_bytes(b"1::2::board game::1139045764\n2::1::caf\xe9::1137206825\n")

    assert import_command(folder) == "tags.dat: not valid UTF-8 text"
    assert not ImportRun.objects.exists()


# ------------------------------------------------------------------------------------------- ids


@pytest.mark.parametrize("huge", [2**63, 2**64 + 1])
@pytest.mark.parametrize(
    ("file", "content", "expected"),
    [
        (
            "movies.csv",
            "movieId,title,genres\n1,Toy Story (1995),Comedy\n{huge},Heat (1995),Action\n",
            "movies.csv, line 3: movieId",
        ),
        ("links.csv", "movieId,imdbId,tmdbId\n1,0114709,{huge}\n", "links.csv, line 2: tmdbId"),
        ("tags.csv", "userId,movieId,tag,timestamp\n{huge},1,pixar,1445714994\n", "tags.csv, line 2: user id"),
        ("ratings.csv", "userId,movieId,rating,timestamp\n1,{huge},4.0,964982703\n", "ratings.csv, line 2: movie"),
    ],
)
def test_ids_above_2_to_the_63_are_refused_with_file_and_line(tmp_path, huge, file, content, expected):
    folder = write_csv(tmp_path / "ml-latest-small")
    (folder / file).write_text(content.format(huge=huge))

    message = import_command(folder)

    assert message.startswith(expected) and "is larger than 2,147,483,647" in message
    assert not ImportRun.objects.exists()
