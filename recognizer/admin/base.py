"""What every page of the recognizer's admin shares: its stylesheet and
script, and how it refuses what a user may not do.

A user may only run an action they hold the permission for; one posted
anyway is refused with 403, not silently ignored.
"""

from django.core.exceptions import PermissionDenied

ADMIN_CSS = ("css/admin/review.css",)
# Applies data-width and data-background: the Content-Security-Policy refuses
# style="..." attributes (digitsite/csp.py).
ADMIN_JS = ("js/admin/data-styles.js",)


class RefuseForbiddenActionsMixin:
    """Answer 403 to a POSTed admin action the user lacks the permission for.

    Django's admin drops such an action from the menu but, when one is posted
    anyway, only says "no action selected"; a refusal should say so.
    """

    def changelist_view(self, request, extra_context=None):
        name = request.POST.get("action") if request.method == "POST" else None
        if name:
            known = {action_name for _, action_name, _ in self._get_base_actions()}
            if name in known and name not in self.get_actions(request):
                raise PermissionDenied(f"you may not run the action {name!r}")
        return super().changelist_view(request, extra_context)


def has_perm(request, codename):
    """Whether the user holds the recognizer app's permission `codename`."""
    return request.user.has_perm(f"recognizer.{codename}")


def require(allowed, what):
    """Refuse (403, "you may not <what>") unless `allowed`."""
    if not allowed:
        raise PermissionDenied(f"you may not {what}")
