from django.apps import AppConfig


class TeachConfig(AppConfig):
    """The teach page and its bounded training jobs (trainer/teach/)."""

    name = "trainer.teach"
    label = "teach"
    verbose_name = "Teach the model"
