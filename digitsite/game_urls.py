"""Pages and HTTP endpoints of the game (home, lobby, rooms)."""

app_name = "game"

urlpatterns = []
