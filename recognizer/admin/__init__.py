"""The recognizer's admin: collected drawings and model versions.

Only staff get in (the admin site's own rule); within it each action needs its
own permission: "review_drawing" to approve, reject and use the review queue,
"relabel_drawing", "export_drawings", and "activate_modelversion" to switch
the model every server process serves. An action a user may not run is
refused with 403, not silently ignored (recognizer/admin/base.py).

Django imports this package when it discovers the apps' admins; importing the
module below registers the model versions' ModelAdmin with the site. The
drawings' admin is recognizer/collection/admin.py, which Django discovers as
the admin of the collection's own app (recognizer/collection/apps.py).
"""

import recognizer.admin.model_versions  # noqa: F401
