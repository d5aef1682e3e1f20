from django.apps import AppConfig


class GameConfig(AppConfig):
    """The draw-the-digit game: rooms, rounds and the drawings they collect.

    The label stays `game` (the tables are game_room, game_seat, ... and the
    migration history is recorded under it) while the code lives in
    digitsite/game/.
    """

    name = "digitsite.game"
    label = "game"
    verbose_name = "Game"
