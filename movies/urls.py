from django.urls import path

from . import catalogue_views, poster_views, views

app_name = "movies"
urlpatterns = [
    path("", views.home, name="home"),
    path("top/", views.top_rated, name="top_rated"),
    path("movies/", catalogue_views.catalogue, name="catalogue"),
    path("movies/<int:pk>/", views.movie_detail, name="detail"),
    *poster_views.urlpatterns,  # the generated poster (movies:poster) and, in development, downloaded ones
    path("ratings/", views.rate, name="rate"),
    path("ratings/delete/", views.rating_delete, name="rating_delete"),
    path("watchlist/toggle/", views.watchlist_toggle, name="watchlist_toggle"),
    path("not-interested/", views.not_interested_toggle, name="not_interested"),
    path("onboarding/skip/", views.onboarding_skip, name="onboarding_skip"),
    path("me/ratings/", views.my_ratings, name="my_ratings"),
    path("me/ratings/about/", views.about_my_ratings, name="about_my_ratings"),
    path("me/watchlist/", views.my_watchlist, name="watchlist"),
    path("me/not-interested/", views.my_not_interested, name="not_interested_list"),
]
