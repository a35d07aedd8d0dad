from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.utils.html import format_html

from .models import Genre, ImportRun, Movie, Rating, Tag
from .poster_views import poster_url
from .tasks import movie_details_queue
from .tmdb import tmdb_enabled


class DecadeFilter(admin.SimpleListFilter):
    title = "decade"
    parameter_name = "decade"

    def lookups(self, request, model_admin):
        years = Movie.objects.exclude(year=None).order_by().values_list("year", flat=True).distinct()
        decades = sorted({year // 10 * 10 for year in years}, reverse=True)
        return [(str(decade), f"{decade}s") for decade in decades]

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        if self.value():
            decade = int(self.value())
            return queryset.filter(year__gte=decade, year__lt=decade + 10)
        return queryset


@admin.register(Genre)
class GenreAdmin(admin.ModelAdmin):
    list_display = ("name",)
    search_fields = ("name",)


@admin.register(Movie)
class MovieAdmin(admin.ModelAdmin):
    # Links typed without a scheme are https (Django 6's default; says so now instead of warning).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ("title", "year", "genre_list", "rating_count", "rating_mean_display", "movielens_id")
    list_filter = ("genres", DecadeFilter)
    search_fields = ("title", "=movielens_id", "=imdb_id")
    filter_horizontal = ("genres",)
    readonly_fields = (
        "rating_count",
        "rating_mean",
        "poster_preview",
        "plot",
        "director",
        "top_cast",
        "details_fetched_at",
        "details_error",
    )
    ordering = ("title",)
    list_per_page = 50
    actions = ("fetch_details",)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("genres")

    @admin.display(description="genres")
    def genre_list(self, movie: Movie) -> str:
        return ", ".join(genre.name for genre in movie.genres.all())

    @admin.display(description="average rating", ordering="rating_mean")
    def rating_mean_display(self, movie: Movie) -> str:
        return f"{movie.rating_mean:.2f}" if movie.rating_mean is not None else "-"

    @admin.display(description="poster")
    def poster_preview(self, movie: Movie) -> str:
        if movie.pk is None:
            return "-"
        source = "from TMDb" if movie.poster else "generated"
        return format_html(
            '<img src="{}" alt="Poster of {}" width="114" height="171" loading="lazy"> <span>{}</span>',
            poster_url(movie),
            movie.title,
            source,
        )

    @admin.action(description="Fetch posters and plots", permissions=["change"])
    def fetch_details(self, request, queryset: QuerySet) -> None:
        if not tmdb_enabled():
            self.message_user(request, "TMDB_API_KEY is not set: nothing was fetched.", messages.ERROR)
            return
        movies = list(queryset)
        queued = sum(movie_details_queue(movie) for movie in movies)
        level = messages.SUCCESS if queued == len(movies) else messages.WARNING
        self.message_user(request, f"Queued the TMDb fetch of {queued} of {len(movies)} movies.", level)


@admin.register(Rating)
class RatingAdmin(admin.ModelAdmin):
    list_display = ("user", "movie", "score", "rated_at")
    list_select_related = ("user", "movie")
    list_filter = ("score",)
    autocomplete_fields = ("user", "movie")
    search_fields = ("movie__title", "=user__username")
    ordering = ("-rated_at",)
    show_full_result_count = False  # an extra COUNT(*) over millions of rows on every page buys nothing


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ("text", "user", "movie", "tagged_at")
    list_select_related = ("user", "movie")
    autocomplete_fields = ("user", "movie")
    search_fields = ("text", "movie__title")
    ordering = ("-tagged_at",)
    show_full_result_count = False


@admin.register(ImportRun)
class ImportRunAdmin(admin.ModelAdmin):
    list_display = (
        "release",
        "finished_at",
        "movies_created",
        "movies_updated",
        "users_created",
        "ratings_created",
        "ratings_updated",
        "tags_created",
    )

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
