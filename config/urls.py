from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("config.health")),
    path("admin/", admin.site.urls),
    path("", include("accounts.urls")),
    path("", include("rooms.urls")),
]

handler404 = "config.api.handler404"
handler500 = "config.api.handler500"
