"""Which class rooms' taught copies changed: a token per class in Django's cache.

Every guess of a class room asks for the class's taught copy
(recognizer/taught.py, class_copy). A process keeps the answer, with the
token it read, until the token changes: saving or deleting a class's copy
(through the ORM, in any process: the signals below) sets a new one. With
several processes Django's cache is Redis (settings.CACHES), so a copy
taught in one process reaches the class's games in the others on their next
guess; a guess costs one cache read, not a database query.
"""

import secrets

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save

# A class's token outlives any copy (TEACH_COPY_HOURS, at most 720): a token
# that expired reads as None, which no process holds once it changed.
TOKEN_SECONDS = 31 * 24 * 3600


def _key(owner_key):
    return f"taught:class-copy:{owner_key}"


def token(owner_key):
    """The class's current token (None until its first copy is saved)."""
    return cache.get(_key(owner_key))


def changed(owner_key):
    cache.set(_key(owner_key), secrets.token_hex(8), TOKEN_SECONDS)


def _copy_changed(sender, instance, **kwargs):
    if instance.owner_kind == sender.Owner.CLASS:
        # After the commit: a new token set inside the transaction could be
        # read by another process while it still sees the old row, which it
        # would then keep under the new token until the next save.
        owner_key = instance.owner_key
        transaction.on_commit(lambda: changed(owner_key))


def connect():
    """Listen for saved and deleted copies (RecognizerConfig.ready)."""
    from recognizer.models import TaughtCopy

    post_save.connect(_copy_changed, sender=TaughtCopy, dispatch_uid="class-copy-saved")
    post_delete.connect(_copy_changed, sender=TaughtCopy, dispatch_uid="class-copy-deleted")
