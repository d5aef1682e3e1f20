from django.apps import AppConfig


class GameConfig(AppConfig):
    """The draw-the-digit game: rooms, rounds and the drawings they collect."""

    name = "digitsite"
    label = "game"
    verbose_name = "Game"

    def ready(self):
        from django.contrib import admin
        from django.contrib.admin.forms import AdminAuthenticationForm

        from digitsite import login_throttle  # connects its signal receivers

        admin.site.login_form = login_throttle.throttled_form(AdminAuthenticationForm)
