"""Pages and HTTP endpoints of the game (home, lobby, rooms, classes)."""

from django.urls import path

from digitsite.game import class_data, class_views, views

app_name = "game"

urlpatterns = [
    path("", views.home, name="home"),
    path("name/", views.set_name, name="set_name"),
    path("rooms/new/", views.create_room, name="create"),
    path("rooms/solo/", views.create_solo, name="solo"),
    path("join/", views.join_room, name="join"),
    path("room/<str:code>/", views.room, name="room"),
    path("lobby.json", views.lobby, name="lobby"),
    path("practice/", views.practice, name="practice"),
    path("class/new/", class_views.create_class, name="class_create"),
    path("class/<str:code>/projector/", class_views.projector, name="projector"),
    # Under /learn/ with the lessons it belongs to, served by the game, which
    # knows who opened the class (class_data.py).
    path("learn/class/<str:code>/", class_data.class_data, name="class_data"),
]
