from django.urls import path

from . import views

app_name = "recommender"
urlpatterns = [
    path("me/history/", views.history, name="history"),
    path("me/history/shown/", views.history_record, name="history_record"),
]
