"""Search every table of the database for stored values: what a privacy
promise ("nothing of it remains") is checked against."""

from django.apps import apps


def _numbers(value):
    """Every float in a value (JSON structures walked)."""
    if isinstance(value, float):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _numbers(item)


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def rows_containing(*needles, apps_only=None):
    """[(model, pk, field)] for every stored value of every model (Django's own
    included, or only those of the app labels in `apps_only`) that holds one
    of `needles`: a float equal to a float needle (in a column or anywhere in
    a JSON value), a str needle inside text, a bytes needle inside a binary
    column."""
    floats = {n for n in needles if isinstance(n, float)}
    texts = [n for n in needles if isinstance(n, str)]
    blobs = [n for n in needles if isinstance(n, bytes)]
    found = []
    for model in apps.get_models(include_auto_created=True):
        if apps_only is not None and model._meta.app_label not in apps_only:
            continue
        for row in model._base_manager.all().iterator():
            for field in model._meta.concrete_fields:
                value = field.value_from_object(row)
                if isinstance(value, (bytes, bytearray, memoryview)):
                    hit = any(blob in bytes(value) for blob in blobs)
                else:
                    hit = (any(number in floats for number in _numbers(value))
                           or any(text in string for string in _strings(value)
                                  for text in texts))
                if hit:
                    found.append((model._meta.label, row.pk, field.name))
    return found
