from django.apps import AppConfig


class RecognizerConfig(AppConfig):
    """The CNN, the stroke pipeline, model versions and the recognition API."""

    name = "recognizer"
    verbose_name = "Recognizer"
