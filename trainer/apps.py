from django.apps import AppConfig


class TrainerConfig(AppConfig):
    """MNIST loading, augmentation, training and the finetune command."""

    name = "trainer"
    verbose_name = "Trainer"
