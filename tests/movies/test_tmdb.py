"""Posters and plots from TMDb (issue 14, item 1): the client, the task, the command, the movie page's request.

Every test talks to a stub HTTP server on 127.0.0.1 that speaks TMDb's JSON shape; a guard refuses any other
connection, so nothing reaches the internet.
"""

import json
import re
import struct
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import urllib3.util.connection
from django.contrib.auth.models import Permission
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.urls import reverse

from movies import tasks
from movies.models import Movie
from movies.tmdb import TMDbClient, TMDbError, TMDbUnavailable, best_match, search_query
from tests.accounts.factories import UserFactory
from tests.movies.factories import MovieFactory

pytestmark = pytest.mark.django_db
API_KEY = "test-key-123"


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x80\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


PNG = tiny_png()


def movie_json(tmdb_id: int, title: str, **extra) -> dict:
    return {
        "id": tmdb_id,
        "title": title,
        "original_title": title,
        "overview": f"The plot of {title}.",
        "release_date": "1995-10-30",
        "poster_path": f"/poster{tmdb_id}.png",
        "credits": {
            "cast": [{"name": name, "order": order} for order, name in enumerate(["Tom", "Tim", "Don", "Wallace"])],
            "crew": [{"name": "John Lasseter", "job": "Director"}, {"name": "Someone", "job": "Editor"}],
        },
        **extra,
    }


class StubTMDb:
    """Routes: path -> answers, each {"status", "json" or "body", "type", "delay", "headers"}; the last one repeats."""

    def __init__(self) -> None:
        self.routes: dict[str, list[dict]] = {}
        self.requests: list[tuple[str, dict]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urlsplit(self.path)
                stub.requests.append((url.path, {k: v[0] for k, v in parse_qs(url.query).items()}))
                answers = stub.routes.get(url.path) or [{"status": 404, "json": {"status_code": 34}}]
                answer = answers.pop(0) if len(answers) > 1 else answers[0]
                time.sleep(answer.get("delay", 0))
                body = json.dumps(answer["json"]).encode() if "json" in answer else answer.get("body", b"")
                self.send_response(answer.get("status", 200))
                self.send_header("Content-Type", answer.get("type", "application/json;charset=utf-8"))
                headers = {"Content-Length": str(len(body)), **answer.get("headers", {})}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                    pass

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def movie(self, tmdb_id: int, title: str = "Toy Story", **extra) -> None:
        self.routes[f"/3/movie/{tmdb_id}"] = [{"json": movie_json(tmdb_id, title, **extra)}]
        self.routes[f"/t/p/w342/poster{tmdb_id}.png"] = [{"body": PNG, "type": "image/png"}]

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]


@pytest.fixture(autouse=True)
def no_internet(monkeypatch):
    """Any connection but to the stub on 127.0.0.1 fails the test."""
    real = urllib3.util.connection.create_connection

    def local_only(address, *args, **kwargs):
        assert address[0] in ("127.0.0.1", "localhost"), f"a test tried to reach {address[0]}"
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", local_only)


@pytest.fixture
def tmdb(settings):
    stub = StubTMDb()
    settings.TMDB_API_KEY = API_KEY
    settings.TMDB_API_URL = f"{stub.url}/3"
    settings.TMDB_IMAGE_URL = f"{stub.url}/t/p"
    settings.TMDB_TIMEOUT_SECONDS = 2.0
    yield stub
    stub.server.shutdown()
    stub.server.server_close()


@pytest.fixture
def sent(monkeypatch):
    """Fetch tasks sent are recorded here instead of reaching a broker."""
    sent = []
    monkeypatch.setattr(tasks.fetch_movie_details, "apply_async", lambda args, **kwargs: sent.append(args[0]))
    return sent


# ------------------------------------------------------------------------------------------- the client


def test_the_client_reads_a_movie_with_its_credits(tmdb):
    tmdb.movie(862)
    details = TMDbClient().movie(862)
    assert (details.tmdb_id, details.title, details.overview) == (862, "Toy Story", "The plot of Toy Story.")
    assert details.director == "John Lasseter" and details.cast == ("Tom", "Tim", "Don")
    path, query = tmdb.requests[0]
    assert path == "/3/movie/862" and query["api_key"] == API_KEY and query["append_to_response"] == "credits"


def test_search_picks_the_result_alike_in_title_and_year(tmdb):
    tmdb.routes["/3/search/movie"] = [
        {
            "json": {
                "results": [
                    {"id": 1, "title": "Heat Wave", "release_date": "1995-01-01"},
                    {"id": 2, "title": "Heat", "release_date": "1986-03-07"},
                    {"id": 3, "title": "Heat", "release_date": "1995-12-15"},
                ]
            }
        }
    ]
    assert TMDbClient().find_id("Heat", 1995) == 3
    assert tmdb.requests[0][1]["query"] == "Heat" and tmdb.requests[0][1]["year"] == "1995"


def test_search_unfolds_movielens_titles_and_refuses_unlike_results():
    assert search_query("Shawshank Redemption, The") == "The Shawshank Redemption"
    results = [{"id": 7, "title": "The Shawshank Redemption", "release_date": "1994-09-23"}]
    assert best_match("Shawshank Redemption, The", 1994, results) == 7
    assert best_match("Shawshank Redemption, The", 1995, results) == 7  # a year apart: still taken
    assert best_match("Shawshank Redemption, The", 2004, results) is None  # ten years apart: another film
    assert best_match("Something Else Entirely", 1994, results) is None
    assert best_match("Amélie", 2001, [{"id": 9, "title": "Amelie", "original_title": "Le Fabuleux Destin"}]) == 9


def test_a_search_with_no_result_for_the_year_tries_without_it(tmdb):
    tmdb.routes["/3/search/movie"] = [
        {"json": {"results": []}},
        {"json": {"results": [{"id": 5, "title": "Babe", "release_date": "1995-07-18"}]}},
    ]
    assert TMDbClient().find_id("Babe", 1996) == 5
    assert "year" in tmdb.requests[0][1] and "year" not in tmdb.requests[1][1]


def test_a_slow_answer_times_out(tmdb, settings):
    settings.TMDB_TIMEOUT_SECONDS = 0.2
    tmdb.routes["/3/movie/1"] = [{"json": movie_json(1, "Slow"), "delay": 1.0}]
    started = time.monotonic()
    with pytest.raises(TMDbUnavailable, match="did not answer in time"):
        TMDbClient().movie(1)
    assert time.monotonic() - started < 0.9


@pytest.mark.parametrize(
    ("status", "error"), [(500, TMDbUnavailable), (503, TMDbUnavailable), (429, TMDbUnavailable), (401, TMDbError)]
)
def test_answers_other_than_200_raise(tmdb, status, error):
    tmdb.routes["/3/movie/2"] = [{"status": status, "json": {"status_message": "no"}}]
    with pytest.raises(error) as raised:
        TMDbClient().movie(2)
    assert (status >= 429) == isinstance(raised.value, TMDbUnavailable)
    assert API_KEY not in str(raised.value)


def test_an_unreachable_server_is_transient_and_the_message_hides_the_key(settings):
    settings.TMDB_API_KEY, settings.TMDB_API_URL = API_KEY, "http://127.0.0.1:9/3"  # discard port: refused
    with pytest.raises(TMDbUnavailable) as raised:
        TMDbClient().movie(3)
    assert API_KEY not in str(raised.value) and "127.0.0.1" not in str(raised.value)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"body": b"<html>hi</html>", "type": "text/html"}, "text/html is not a JPEG, PNG or WebP"),
        ({"body": b"<svg xmlns='http://www.w3.org/2000/svg'/>", "type": "image/svg+xml"}, "image/svg+xml is not"),
        ({"body": b"GIF89a-not-a-png", "type": "image/png"}, "its bytes are not a PNG"),
        ({"body": PNG + b"\0" * 3000, "type": "image/png"}, "is over 2048"),  # by its Content-Length
        # No Content-Length (a chunked answer): refused as the bytes arrive.
        ({"body": PNG + b"\0" * 3000, "type": "image/png", "headers": {"Content-Length": ""}}, "over 2048 bytes"),
    ],
)
def test_a_poster_that_is_not_a_small_image_is_refused(tmdb, settings, answer, message):
    settings.TMDB_MAX_IMAGE_BYTES = 2048
    tmdb.routes["/t/p/w342/bad.png"] = [answer]
    with pytest.raises(TMDbError, match=re.escape(message)):
        TMDbClient().poster("/bad.png")


def test_a_poster_path_of_another_form_is_never_requested(tmdb):
    for path in ("//evil.example/x.png", "/../../etc/passwd", "/x.svg", "poster.png"):
        with pytest.raises(TMDbError, match="unexpected form"):
            TMDbClient().poster(path)
    assert tmdb.requests == []


# ------------------------------------------------------------------------------------------- the task


def test_the_task_stores_poster_plot_and_credits_by_tmdb_id(tmdb):
    movie = MovieFactory(title="Toy Story", year=1995, tmdb_id=862)
    tmdb.movie(862)
    tasks.fetch_movie_details.apply(args=[movie.pk])
    movie.refresh_from_db()
    assert movie.plot == "The plot of Toy Story." and movie.details_error == ""
    assert movie.director == "John Lasseter" and movie.top_cast == "Tom, Tim, Don"
    assert movie.details_fetched_at is not None
    assert movie.poster.name.startswith(f"posters/{movie.pk}-") and movie.poster.name.endswith(".png")
    with default_storage.open(movie.poster.name, "rb") as stored:
        assert stored.read() == PNG
    assert tmdb.paths() == ["/3/movie/862", "/t/p/w342/poster862.png"]


def test_without_a_tmdb_id_the_task_searches_by_title_and_year_and_keeps_the_id(tmdb):
    movie = MovieFactory(title="City of Lost Children, The (Cité des enfants perdus, La)", year=1995, tmdb_id=None)
    tmdb.routes["/3/search/movie"] = [
        {"json": {"results": [{"id": 902, "title": "The City of Lost Children", "release_date": "1995-05-17"}]}}
    ]
    tmdb.movie(902, "The City of Lost Children")
    tasks.fetch_movie_details.apply(args=[movie.pk])
    movie.refresh_from_db()
    assert movie.tmdb_id == 902 and movie.plot == "The plot of The City of Lost Children." and movie.poster
    assert tmdb.requests[0][1]["query"] == "The City of Lost Children" and tmdb.requests[0][1]["year"] == "1995"


def test_no_match_is_recorded_and_the_poster_stays_generated(tmdb):
    movie = MovieFactory(title="A Film TMDb Never Heard Of", year=1990, tmdb_id=None)
    tmdb.routes["/3/search/movie"] = [{"json": {"results": []}}]
    tasks.fetch_movie_details.apply(args=[movie.pk])
    movie.refresh_from_db()
    assert "no TMDb search result" in movie.details_error and movie.details_fetched_at and not movie.poster


def test_a_server_error_is_retried_then_succeeds(tmdb):
    movie = MovieFactory(tmdb_id=862)
    tmdb.movie(862)
    tmdb.routes["/3/movie/862"].insert(0, {"status": 500, "json": {}})
    tasks.fetch_movie_details.apply(args=[movie.pk])
    movie.refresh_from_db()
    assert movie.plot and movie.poster and movie.details_error == ""
    assert tmdb.paths().count("/3/movie/862") == 2


def test_a_server_that_keeps_failing_is_given_up_after_the_retries(tmdb):
    movie = MovieFactory(tmdb_id=862)
    tmdb.routes["/3/movie/862"] = [{"status": 502, "json": {}}]
    tasks.fetch_movie_details.apply(args=[movie.pk])
    movie.refresh_from_db()
    assert tmdb.paths().count("/3/movie/862") == 1 + tasks.MAX_RETRIES
    assert "502" in movie.details_error and "after 3 retries" in movie.details_error
    assert movie.details_fetched_at is None  # a later run tries again


def test_a_refused_poster_keeps_the_plot(tmdb, settings):
    settings.TMDB_MAX_IMAGE_BYTES = 10
    movie = MovieFactory(tmdb_id=862)
    tmdb.movie(862)
    tasks.fetch_movie_details.apply(args=[movie.pk])
    movie.refresh_from_db()
    assert movie.plot and not movie.poster and "refused" in movie.details_error


def test_a_new_poster_replaces_the_old_file(tmdb):
    movie = MovieFactory(tmdb_id=862)
    tmdb.movie(862)
    tasks.movie_details_fetch(movie.pk)
    first = Movie.objects.get(pk=movie.pk).poster.name
    tmdb.routes["/t/p/w342/poster862.png"] = [{"body": PNG + b"more", "type": "image/png"}]
    tasks.movie_details_fetch(movie.pk)
    second = Movie.objects.get(pk=movie.pk).poster.name
    assert first != second and not default_storage.exists(first) and default_storage.exists(second)


# ------------------------------------------------------------------------------------------- asking for a fetch


def test_without_a_key_nothing_is_queued_or_fetched(settings, sent, client):
    settings.TMDB_API_KEY = ""
    movie = MovieFactory()
    assert tasks.movie_details_request(movie) is False
    client.get(reverse("movies:detail", args=[movie.pk]))
    with pytest.raises(CommandError, match="TMDB_API_KEY is not set"):
        call_command("fetch_movie_details", "--sync")
    assert sent == []


def test_a_movie_is_requested_at_most_once_per_guard_period(tmdb, sent):
    movie, done = MovieFactory(), MovieFactory()
    Movie.objects.filter(pk=done.pk).update(details_fetched_at="2026-01-01T00:00:00Z")
    done.refresh_from_db()
    assert tasks.movie_details_request(movie) is True
    assert tasks.movie_details_request(movie) is False
    assert tasks.movie_details_request(done) is False  # it has details already
    assert sent == [movie.pk] and tmdb.requests == []  # queued, never fetched on the spot


def test_a_broker_that_is_down_does_not_break_the_request(tmdb, monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(tasks.fetch_movie_details, "apply_async", down)
    assert tasks.movie_details_request(MovieFactory()) is False


def test_the_movie_page_never_reaches_tmdb_and_queues_at_most_one_fetch(tmdb, sent, client):
    movie = MovieFactory(tmdb_id=862)
    for _ in range(3):
        assert client.get(reverse("movies:detail", args=[movie.pk])).status_code == 200
    client.force_login(UserFactory())
    client.get(reverse("movies:detail", args=[movie.pk]))
    assert tmdb.requests == []
    assert sent == [movie.pk]  # queued once (the cache guard), fetched by a worker, never on the request


# ------------------------------------------------------------------------------------------- the command and admin


def test_the_command_queues_movies_lacking_details(tmdb, sent):
    movies = MovieFactory.create_batch(3)
    Movie.objects.filter(pk=movies[0].pk).update(details_fetched_at="2026-01-01T00:00:00Z")
    call_command("fetch_movie_details")
    assert sorted(sent) == sorted([movies[1].pk, movies[2].pk])
    sent.clear()
    call_command("fetch_movie_details", "--limit", "1")
    assert len(sent) == 1


def test_the_command_fetches_inline_with_sync(tmdb, sent, capsys):
    movie = MovieFactory(tmdb_id=862)
    tmdb.movie(862)
    call_command("fetch_movie_details", "--sync")
    movie.refresh_from_db()
    assert movie.poster and movie.plot and sent == []
    assert "Fetched details of 1 movies; 0 failed." in capsys.readouterr().out


def test_the_admin_action_queues_fetches_for_editors_only(tmdb, sent, client):
    movie = MovieFactory()
    url = reverse("admin:movies_movie_changelist")
    data = {"action": "fetch_details", "_selected_action": [movie.pk]}
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_movie"))
    client.force_login(viewer)
    client.post(url, data)
    assert sent == []  # the action is not offered without the change permission
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    response = client.post(url, data, follow=True)
    assert sent == [movie.pk] and "Queued the TMDb fetch of 1 of 1 movies." in response.text
