from django.contrib import admin
from django.http import HttpResponse, HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe

admin.site.site_header = "MyNextMovie administration"
admin.site.site_title = "MyNextMovie admin"


@require_safe
@cache_control(public=True, max_age=24 * 3600)
def robots_txt(request):
    # Personal pages are behind a log-in anyway; keep crawlers off the admin and the account forms.
    return HttpResponse("User-agent: *\nDisallow: /admin/\nDisallow: /accounts/\n", content_type="text/plain")


@require_safe
def favicon(request):
    # Looked up per request: with the production manifest storage the hashed name exists only after collectstatic.
    return HttpResponsePermanentRedirect(static("favicon.svg"))


urlpatterns = [
    # Browsers and crawlers ask for these at the root whatever the pages link to.
    path("favicon.ico", favicon),
    path("robots.txt", robots_txt),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("", include("movies.urls")),
    path("", include("recommender.urls")),
]
