"""Fetch posters and plots from TMDb for movies that lack them: queued for the workers, or here with --sync."""

from django.core.management.base import BaseCommand, CommandError

from movies.models import Movie
from movies.tasks import movie_details_fetch, movie_details_queue, movies_lacking_details
from movies.tmdb import TMDbUnavailable, tmdb_enabled


class Command(BaseCommand):
    help = "Queue (or, with --sync, run here) the TMDb fetch of posters and plots for movies that lack them."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=None, help="At most this many movies (the most rated first).")
        parser.add_argument("--sync", action="store_true", help="Fetch here, one movie after another, no worker.")
        parser.add_argument(
            "--all", action="store_true", dest="refetch", help="Fetch again movies that already have details."
        )

    def handle(self, *args, limit=None, sync=False, refetch=False, **options):
        if not tmdb_enabled():
            raise CommandError("TMDB_API_KEY is not set: posters stay generated and nothing is fetched.")
        movies = (Movie.objects.all() if refetch else movies_lacking_details()).order_by("-rating_count", "pk")
        if limit is not None:
            movies = movies[: max(0, limit)]
        done = failed = 0
        for movie in movies.iterator():
            if not sync:
                done += movie_details_queue(movie)
                continue
            try:
                fetched = movie_details_fetch(movie.pk)
            except TMDbUnavailable as error:  # no retries here: say so, and let a later run try again
                failed += 1
                self.stderr.write(f"{movie}: {error}")
                continue
            if fetched and fetched.details_error:
                failed += 1
                self.stderr.write(f"{movie}: {fetched.details_error}")
            else:
                done += 1
        if sync:
            self.stdout.write(self.style.SUCCESS(f"Fetched details of {done} movies; {failed} failed."))
        else:
            self.stdout.write(self.style.SUCCESS(f"Queued the details of {done} movies for the workers."))
