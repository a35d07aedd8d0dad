import unicodedata

from django.conf import settings
from django.db import models

from .links import imdb_search_link, is_legacy_imdb_link, is_web_link

# Ratings are half stars from 0.5 to 5.0; the database enforces it so no code path can store another value.
RATING_SCORES = tuple(step / 2 for step in range(1, 11))
MIN_SCORE, MAX_SCORE = RATING_SCORES[0], RATING_SCORES[-1]


def searchable(text: str) -> str:
    """'Amélie' and 'AMELIE' both become 'amelie'."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


class Genre(models.Model):
    name = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class MovieQuerySet(models.QuerySet):
    def bulk_create(self, objs, *args, **kwargs):
        # bulk_create skips save(): derive the search key here too, so no creation path leaves it empty.
        objs = list(objs)
        for movie in objs:
            movie.search_title = searchable(movie.title)
        return super().bulk_create(objs, *args, **kwargs)


class Movie(models.Model):
    movielens_id = models.PositiveIntegerField("MovieLens id", unique=True)
    # Long enough for every MovieLens release (ML-32M's longest title is under 300 characters).
    title = models.CharField(max_length=500, db_index=True)
    # Lower-case, accents stripped: case- and accent-insensitive search that works the same on SQLite and PostgreSQL.
    search_title = models.CharField(max_length=500, db_index=True, editable=False, default="")
    year = models.PositiveSmallIntegerField(null=True, blank=True, db_index=True)
    release_date = models.DateField(null=True, blank=True)
    imdb_id = models.CharField("IMDb id", max_length=16, blank=True, help_text="For example tt0114709.")
    imdb_url = models.URLField("IMDb link (legacy)", max_length=500, blank=True)
    tmdb_id = models.PositiveIntegerField("TMDb id", null=True, blank=True)
    genres = models.ManyToManyField(Genre, related_name="movies", blank=True)
    # Denormalised so catalogue pages and the admin can sort by them without aggregating millions of ratings;
    # kept current by movies.services (after an import, and on every rating the site stores).
    rating_count = models.PositiveIntegerField(default=0, editable=False, db_index=True)
    rating_mean = models.FloatField(null=True, blank=True, editable=False)
    # From TMDb (movies.tasks.fetch_movie_details), only when TMDB_API_KEY is set; without a poster the site shows a
    # generated one (movies.posters). Not editable: an uploaded file would be served from the site's own origin.
    poster = models.FileField(upload_to="posters/", max_length=200, blank=True, editable=False)
    plot = models.TextField(blank=True, editable=False)
    director = models.CharField(max_length=200, blank=True, editable=False)
    top_cast = models.CharField("cast", max_length=500, blank=True, editable=False, help_text="The first three names.")
    # Set once TMDb answered (with or without a match); null means "not fetched yet", which the fetch command queues.
    details_fetched_at = models.DateTimeField(null=True, blank=True, editable=False)
    details_error = models.CharField(max_length=300, blank=True, editable=False)

    objects = MovieQuerySet.as_manager()

    class Meta:
        ordering = ("title", "year")

    def __str__(self) -> str:
        return f"{self.title} ({self.year})" if self.year else self.title

    def save(self, *args, **kwargs):
        self.search_title = searchable(self.title)
        super().save(*args, **kwargs)

    @property
    def imdb_link(self) -> str:
        if self.imdb_id:
            return f"https://www.imdb.com/title/{self.imdb_id}/"
        if is_legacy_imdb_link(self.imdb_url):
            return imdb_search_link(title=self.title, year=self.year)
        return self.imdb_url if is_web_link(self.imdb_url) else ""  # never javascript: or data: links

    @property
    def tmdb_link(self) -> str:
        return f"https://www.themoviedb.org/movie/{self.tmdb_id}" if self.tmdb_id else ""


class Rating(models.Model):
    # The (user, movie) unique constraint's index serves "ratings by user", so no separate index.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ratings", db_index=False)
    movie = models.ForeignKey(Movie, on_delete=models.CASCADE, related_name="ratings")
    score = models.FloatField(help_text="0.5 to 5.0 stars in half-star steps.")
    rated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("user", "movie"), name="rating_one_per_user_and_movie"),
            models.CheckConstraint(
                condition=models.Q(score__in=RATING_SCORES), name="rating_score_half_stars_0_5_to_5"
            ),
        ]
        indexes = [models.Index(fields=("rated_at",), name="rating_rated_at_idx")]

    def __str__(self) -> str:
        return f"{self.user} rated {self.movie}: {self.score}"


class Tag(models.Model):
    """A free-text tag a user put on a movie (ML-10M and the CSV releases ship them)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tags", db_index=False)
    movie = models.ForeignKey(Movie, on_delete=models.CASCADE, related_name="tags")
    text = models.CharField(max_length=500)
    tagged_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=("user", "movie", "text"), name="tag_unique_per_user_movie")]

    def __str__(self) -> str:
        return self.text


class ImportRun(models.Model):
    """One run of `import_movielens`: which release came from where, and what it changed."""

    release = models.CharField(max_length=64, help_text="ml-100k, ml-1m, ml-25m, ...")
    layout = models.CharField(max_length=16)
    source = models.CharField(max_length=1000)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    movies_created = models.PositiveIntegerField(default=0)
    movies_updated = models.PositiveIntegerField(default=0)
    users_created = models.PositiveIntegerField(default=0)
    users_updated = models.PositiveIntegerField(default=0)
    ratings_created = models.PositiveIntegerField(default=0)
    ratings_updated = models.PositiveIntegerField(default=0)
    tags_created = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("-finished_at",)
        get_latest_by = "finished_at"

    def __str__(self) -> str:
        return f"{self.release} imported {self.finished_at:%Y-%m-%d %H:%M}"


class WatchlistItem(models.Model):
    """A movie the user wants to watch: kept out of recommendations until rated or removed."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="watchlist", db_index=False
    )
    movie = models.ForeignKey(Movie, on_delete=models.CASCADE, related_name="+")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-added_at",)
        constraints = [models.UniqueConstraint(fields=("user", "movie"), name="watchlist_once_per_movie")]


class NotInterested(models.Model):
    """A movie the user asked never to be recommended again."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="not_interested", db_index=False
    )
    movie = models.ForeignKey(Movie, on_delete=models.CASCADE, related_name="+")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=("user", "movie"), name="not_interested_once_per_movie")]
