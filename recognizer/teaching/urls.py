"""The teaching pages under /learn/."""

from django.urls import path

from recognizer.teaching import views

app_name = "teaching"

urlpatterns = [
    path("", views.index, name="index"),
    path("how-it-works/", views.how_it_works, name="how_it_works"),
    path("attention/", views.attention_page, name="attention"),
    path("model/", views.model_page, name="model"),
    path("data/", views.data_page, name="data"),
    path("how-it-learned/", views.how_it_learned, name="how_it_learned"),
    path("worksheet/", views.worksheet, name="worksheet"),
    path("top-digits/<slug:key>/<slug:layer>.png", views.top_digits_sprite,
         name="top_digits"),
    path("api/stages", views.api_stages, name="api_stages"),
    path("api/attention", views.api_attention, name="api_attention"),
    path("api/neuron", views.api_neuron, name="api_neuron"),
    path("api/snapshots", views.api_snapshots, name="api_snapshots"),
]
