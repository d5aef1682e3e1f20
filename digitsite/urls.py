from django.contrib import admin
from django.urls import include, path

from digitsite import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("learn/", include("recognizer.teaching.urls")),
    path("", include("recognizer.urls")),
    path("", include("digitsite.game.urls")),
]
