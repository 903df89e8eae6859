from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from rooms.admin import overview_view


class FaviconView(RedirectView):
    """/favicon.ico, asked for by browsers on pages that name no icon (Django admin's)."""

    permanent = True

    def get_redirect_url(self, *args, **kwargs) -> str:
        return static("img/favicon.svg")


urlpatterns = [
    path("", include("config.health")),
    path("favicon.ico", FaviconView.as_view()),
    # Before admin.site.urls, whose catch-all would take "overview/" for an app label.
    path("admin/overview/", admin.site.admin_view(overview_view), name="admin-overview"),
    path("admin/", admin.site.urls),
    path("", include("api.urls")),
    path("", include("accounts.urls")),
    path("", include("rooms.urls")),
]

handler404 = "api.base.handler404"
handler500 = "api.base.handler500"
