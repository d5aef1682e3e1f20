"""The admin for model versions: their metrics and training, and activation.

Activating a version (or rolling back to an older one) needs the
"activate_modelversion" permission and a file that loads; every server
process switches to it within RECOGNIZER_RELOAD_SECONDS.
"""

import json

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from recognizer.admin.base import ADMIN_CSS, ADMIN_JS, RefuseForbiddenActionsMixin, has_perm
from recognizer.checkpoints import CheckpointError
from recognizer.metrics_display import UNKNOWN, confusion_grid, percent
from recognizer.models import ModelVersion
from recognizer.versions import activate_version, load_version

# Evaluation sets in the order and with the names the admin shows them.
METRIC_SET_TITLES = {
    "mnist_test": "MNIST test",
    "canvas": "Canvas-style (MNIST test redrawn through the stroke pipeline)",
}


def metric_sets(metrics):
    """[(key, title, metrics dict)] for every evaluation set stored in `metrics`."""
    if not isinstance(metrics, dict):
        return []
    found = [
        (key, value) for key, value in metrics.items()
        if isinstance(value, dict) and "accuracy" in value
        and ("confusion_matrix" in value or "per_class_accuracy" in value)
    ]
    order = list(METRIC_SET_TITLES)
    found.sort(key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0]))
    return [(key, METRIC_SET_TITLES.get(key, key.replace("_", " ").capitalize()), value)
            for key, value in found]


# What the training summary lists first, with its wording.
TRAINING_DETAILS = (
    ("command", "command"), ("from", "started from"), ("seed", "seed"), ("epochs", "epochs"),
    ("batch_size", "batch size"), ("lr", "learning rate"), ("optimizer", "optimizer"),
    ("device", "device"), ("duration_seconds", "duration (s)"), ("torch", "torch"),
)


@admin.register(ModelVersion)
class ModelVersionAdmin(RefuseForbiddenActionsMixin, admin.ModelAdmin):
    list_display = ("version", "is_active", "created", "accuracy_display",
                    "canvas_accuracy_display", "parent", "training_data_short")
    list_filter = ("is_active", "architecture")
    search_fields = ("version", "sha256", "notes")
    list_select_related = ("parent",)
    actions = ("activate_selected",)
    fieldsets = (
        (None, {"fields": ("version", "is_active", "created", "parent", "architecture",
                           "notes")}),
        ("Metrics", {"fields": ("metrics_report",)}),
        ("Training", {"fields": ("training_report", "drawings_served")}),
        ("File", {"fields": ("path", "sha256", "size_bytes"), "classes": ("collapse",)}),
        ("Raw data", {"fields": ("training_json", "metrics_json"), "classes": ("collapse",)}),
    )

    class Media:
        css = {"all": ADMIN_CSS}
        js = ADMIN_JS

    def get_readonly_fields(self, request, obj=None):
        return tuple(f for fs in self.fieldsets for f in fs[1]["fields"] if f != "notes")

    def has_add_permission(self, request):
        return False  # versions come from training runs with their files

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_active:
            return False  # the version every process serves stays
        return super().has_delete_permission(request, obj)

    def has_activate_permission(self, request):
        return has_perm(request, "activate_modelversion")

    def get_actions(self, request):
        actions = super().get_actions(request)
        # Bulk deletion would take the active version with it.
        actions.pop("delete_selected", None)
        return actions

    # -- columns ---------------------------------------------------------------------

    @admin.display(description="MNIST test accuracy")
    def accuracy_display(self, obj):
        return percent((obj.metrics or {}).get("accuracy"))

    @admin.display(description="canvas accuracy")
    def canvas_accuracy_display(self, obj):
        return percent((obj.metrics or {}).get("canvas_accuracy"))

    @admin.display(description="training data")
    def training_data_short(self, obj):
        data = (obj.training or {}).get("data")
        if not isinstance(data, dict):
            return UNKNOWN
        parts = []
        if data.get("mnist_train") is not None:
            parts.append(f"{data['mnist_train']:,} MNIST")
        if data.get("collected"):
            parts.append(f"{data['collected']:,} drawings")
        return " + ".join(parts) or UNKNOWN

    @admin.display(description="metrics")
    def metrics_report(self, obj):
        metrics = obj.metrics if isinstance(obj.metrics, dict) else {}
        sets = []
        for key, title, values in metric_sets(metrics):
            per_class = values.get("per_class_accuracy") or []
            sets.append({
                "key": key, "title": title,
                "accuracy": percent(values.get("accuracy")),
                "count": values.get("count"),
                "loss": values.get("loss"),
                "per_class": [
                    {"digit": d, "text": percent(v),
                     "width": f"{float(v) * 100:.1f}" if isinstance(v, (int, float)) else "0"}
                    for d, v in enumerate(per_class[:10])
                ],
                "confusion": confusion_grid(values.get("confusion_matrix")),
            })
        activation = metrics.get("activation") if isinstance(metrics.get("activation"),
                                                                 dict) else None
        return render_to_string("admin/recognizer/modelversion/metrics.html", {
            "accuracy": percent(metrics.get("accuracy")),
            "canvas_accuracy": percent(metrics.get("canvas_accuracy")),
            "sets": sets,
            "digits": range(10),
            "activation": activation,
            "baseline": metrics.get("baseline") if isinstance(metrics.get("baseline"),
                                                              dict) else None,
        })

    @admin.display(description="how it was trained")
    def training_report(self, obj):
        training = obj.training if isinstance(obj.training, dict) else {}
        data = training.get("data") if isinstance(training.get("data"), dict) else {}
        details = [(label, training[key]) for key, label in TRAINING_DETAILS
                   if training.get(key) not in (None, "")]
        shown = {"data", *(key for key, _ in TRAINING_DETAILS)}
        counts = [(k.replace("_", " "), f"{v:,}") for k, v in data.items()
                  if isinstance(v, int) and not isinstance(v, bool)]
        per_class = data.get("train_per_class")
        return render_to_string("admin/recognizer/modelversion/training.html", {
            "details": details,
            "counts": counts,
            "per_class": per_class if isinstance(per_class, list) else None,
            "other": sorted((k, v) for k, v in training.items() if k not in shown),
        })

    @admin.display(description="drawings it recognised")
    def drawings_served(self, obj):
        count = obj.drawings.count()
        url = reverse("admin:recognizer_drawing_changelist") + f"?model_version__id__exact={obj.pk}"
        return format_html('<a href="{}">{} drawing{}</a>', url, count, "" if count == 1 else "s")

    @admin.display(description="training (JSON)")
    def training_json(self, obj):
        return format_html("<pre class=\"json-dump\">{}</pre>",
                           json.dumps(obj.training, indent=2, sort_keys=True, default=str))

    @admin.display(description="metrics (JSON)")
    def metrics_json(self, obj):
        return format_html("<pre class=\"json-dump\">{}</pre>",
                           json.dumps(obj.metrics, indent=2, sort_keys=True, default=str))

    # -- activation ----------------------------------------------------------------------

    def activate(self, request, version):
        """Activate `version` if its file loads; report to the user either way."""
        try:
            load_version(version)
        except CheckpointError as exc:
            self.message_user(request, f"Not activated: {exc}", messages.ERROR)
            return False
        previous = ModelVersion.objects.filter(is_active=True).exclude(pk=version.pk).first()
        activate_version(version)
        what = "Activated"
        if previous is not None and previous.created > version.created:
            what = "Rolled back to"
        self.log_change(request, version, f"{what} this version"
                        + (f" (was {previous.version})" if previous else ""))
        self.message_user(
            request,
            f"{what} {version.version}. Every server process switches to it within "
            f"{settings.RECOGNIZER_RELOAD_SECONDS:g} seconds; games carry on.",
            messages.SUCCESS,
        )
        return True

    @admin.action(description="Activate the selected version", permissions=["activate"])
    def activate_selected(self, request, queryset):
        chosen = list(queryset[:2])
        if len(chosen) != 1:
            self.message_user(request, "Select exactly one version to activate.",
                              messages.ERROR)
            return None
        self.activate(request, chosen[0])
        return None

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("<path:object_id>/activate/", self.admin_site.admin_view(self.activate_view),
                 name=f"{prefix}_activate"),
            *super().get_urls(),
        ]

    def activate_view(self, request, object_id):
        if not self.has_activate_permission(request):
            raise PermissionDenied("you may not activate model versions")
        return require_POST(self._activate)(request, object_id)

    def _activate(self, request, object_id):
        version = get_object_or_404(ModelVersion, pk=unquote(object_id))
        self.activate(request, version)
        return HttpResponseRedirect(
            reverse("admin:recognizer_modelversion_change", args=[version.pk]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        active = ModelVersion.objects.filter(is_active=True).first()
        extra_context = {
            **(extra_context or {}),
            "can_activate": self.has_activate_permission(request),
            "active_version": active,
        }
        return super().change_view(request, object_id, form_url, extra_context)
