from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "MyNextMovie administration"
admin.site.site_title = "MyNextMovie admin"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("", include("movies.urls")),
    path("", include("recommender.urls")),
]
