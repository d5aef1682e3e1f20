from django.apps import AppConfig


class GameConfig(AppConfig):
    """The draw-the-digit game: rooms, rounds and the drawings they collect."""

    name = "digitsite"
    label = "game"
    verbose_name = "Game"
