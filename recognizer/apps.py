from django.apps import AppConfig


class RecognizerConfig(AppConfig):
    """The CNN, the stroke pipeline, model versions and the recognition API."""

    name = "recognizer"
    verbose_name = "Recognizer"

    def ready(self):
        from recognizer import class_copies

        # A class's games keep its taught copy until a copy is saved or deleted.
        class_copies.connect()
