from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from digitsite import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    # Browsers ask for /favicon.ico on every site, pages without the icon's
    # <link> too (the admin's): it is the site's SVG icon.
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg")), name="favicon"),
    path("learn/teach/", include("trainer.teach.urls")),
    path("learn/", include("recognizer.teaching.urls")),
    path("", include("recognizer.urls")),
    path("", include("digitsite.game.urls")),
]
