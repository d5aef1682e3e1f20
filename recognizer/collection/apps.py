from django.apps import AppConfig


class CollectionConfig(AppConfig):
    """Collected drawings, installed as an app so that Django's admin discovery
    finds their admin (recognizer/collection/admin.py) by itself.

    Otherwise the recognizer's admin package would have to import it, an
    import from the recognizer into its own sub-package, which imports the
    recognizer: a cycle. The app has no models, tables or migrations: the
    drawings are recognizer.models.Drawing, with the recognizer's label, so
    the admin lists and permissions stay the recognizer's.
    """

    name = "recognizer.collection"
    label = "recognizer_collection"
    verbose_name = "Collected drawings"
