from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("learn/", include("recognizer.teaching.urls")),
    path("", include("recognizer.urls")),
    path("", include("digitsite.game_urls")),
]
