"""The admin for collected drawings and model versions.

Only staff get in (the admin site's own rule); within it each action needs its
own permission: "review_drawing" to approve, reject and use the review queue,
"relabel_drawing", "export_drawings", and "activate_modelversion" to switch
the model every server process serves. An action a user may not run is
refused with 403, not silently ignored.
"""

import json

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.handlers.asgi import ASGIRequest
from django.db.models import F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_GET, require_POST

from recognizer import exports, json_input, review, thumbnails
from recognizer.checkpoints import CheckpointError
from recognizer.metrics_display import confusion_colour, percent
from recognizer.models import Drawing, DrawingLabelChange, ModelVersion
from recognizer.versions import activate_version, load_version

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


def _perm(request, codename):
    return request.user.has_perm(f"recognizer.{codename}")


# -- list filters ----------------------------------------------------------------------


class DigitFilter(admin.SimpleListFilter):
    """The ten digits as fixed choices: no scan of the table to list them."""

    field = None

    def lookups(self, request, model_admin):
        return [(str(d), str(d)) for d in range(10)]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        try:
            digit = review.parse_digit(value)
        except review.ReviewError:
            return queryset.none()
        return queryset.filter(**{self.field: digit})


class LabelFilter(DigitFilter):
    title = "label"
    parameter_name = "label"
    field = "label"


class PredictionFilter(DigitFilter):
    title = "prediction"
    parameter_name = "prediction"
    field = "prediction"


class DiffersFilter(admin.SimpleListFilter):
    title = "label differs from prediction"
    parameter_name = "differs"

    def lookups(self, request, model_admin):
        return [("yes", "Differs"), ("no", "Agrees")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(~Q(label=F("prediction")))
        if self.value() == "no":
            return queryset.filter(label=F("prediction"))
        return queryset


# (parameter value, title, lower bound inclusive, upper bound exclusive)
CONFIDENCE_BUCKETS = [
    ("lt50", "below 50%", None, 0.5),
    ("50-80", "50% to 80%", 0.5, 0.8),
    ("80-95", "80% to 95%", 0.8, 0.95),
    ("95-99", "95% to 99%", 0.95, 0.99),
    ("99+", "99% and above", 0.99, None),
]


class ConfidenceFilter(admin.SimpleListFilter):
    title = "confidence"
    parameter_name = "confidence"

    def lookups(self, request, model_admin):
        return [(key, title) for key, title, _, _ in CONFIDENCE_BUCKETS]

    def queryset(self, request, queryset):
        for key, _, low, high in CONFIDENCE_BUCKETS:
            if self.value() == key:
                if low is not None:
                    queryset = queryset.filter(confidence__gte=low)
                if high is not None:
                    queryset = queryset.filter(confidence__lt=high)
                return queryset
        return queryset


# -- drawings ----------------------------------------------------------------------------


class DrawingLabelChangeInline(admin.TabularInline):
    model = DrawingLabelChange
    extra = 0
    can_delete = False
    fields = ("old_label", "new_label", "user", "created")
    readonly_fields = fields
    verbose_name = "label change"
    verbose_name_plural = "Label history"

    # The history belongs to the drawing: whoever may see the drawing sees it,
    # and nobody edits it by hand.
    def has_view_permission(self, request, obj=None):
        return _perm(request, "view_drawing") or _perm(request, "change_drawing")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _relabel_action(digit):
    def relabel_action(modeladmin, request, queryset):
        changed = review.relabel(queryset, digit, request.user)
        modeladmin.message_user(
            request, f"Relabelled {changed} drawing{'s' if changed != 1 else ''} as {digit}; "
            "their previous labels are kept in each drawing's label history.",
            messages.SUCCESS,
        )

    relabel_action.__name__ = f"relabel_as_{digit}"
    return admin.action(
        description=f"Relabel selected drawings as {digit}", permissions=["relabel"]
    )(relabel_action)


def _export_action(fmt, title):
    def export_action(modeladmin, request, queryset):
        return modeladmin.export_response(request, queryset, fmt)

    export_action.__name__ = f"export_{fmt}"
    return admin.action(description=f"Export selected drawings as {title}",
                        permissions=["export"])(export_action)


@admin.register(Drawing)
class DrawingAdmin(RefuseForbiddenActionsMixin, admin.ModelAdmin):
    list_display = (
        "id", "drawing_thumb", "input_thumb", "label_display", "prediction_display",
        "confidence_display", "model_version", "player_name", "room_code", "created",
        "status_display",
    )
    list_display_links = ("id", "drawing_thumb")
    list_filter = (
        "status", LabelFilter, PredictionFilter, DiffersFilter, ConfidenceFilter,
        "model_version", "created",
    )
    search_fields = ("player_name", "player_id", "room_code")
    list_select_related = ("model_version",)
    list_per_page = 100
    date_hierarchy = "created"
    inlines = (DrawingLabelChangeInline,)
    actions = (
        "approve", "reject", *(_relabel_action(d) for d in range(10)),
        _export_action("idx", "IDX (MNIST format, zipped)"), _export_action("csv", "CSV"),
        _export_action("npz", "NPZ (numpy)"),
    )
    fieldsets = (
        ("Drawing", {"fields": ("replay", "input_large", "label_display", "prediction_display",
                                "confidence_display", "probabilities_display")}),
        ("Review", {"fields": ("status", "reviewed_by", "reviewed_at")}),
        ("Origin", {"fields": ("player_name", "player_id", "user", "room_code", "game_id",
                               "round_number", "source", "created", "model_version")}),
    )

    class Media:
        css = {"all": ADMIN_CSS}
        js = ADMIN_JS

    # -- permissions ----------------------------------------------------------

    def has_add_permission(self, request):
        return False  # drawings come from games, never typed in

    def has_review_permission(self, request):
        return _perm(request, "review_drawing")

    def has_relabel_permission(self, request):
        return _perm(request, "relabel_drawing")

    def has_export_permission(self, request):
        return _perm(request, "export_drawings")

    def get_readonly_fields(self, request, obj=None):
        fields = {f for fs in self.fieldsets for f in fs[1]["fields"]}
        # Status changes go through the review functions (who and when are
        # recorded), so the form only offers it to reviewers.
        if self.has_review_permission(request):
            fields.discard("status")
        return tuple(sorted(fields))

    def save_model(self, request, obj, form, change):
        if "status" in form.changed_data:
            obj.reviewed_by = request.user if obj.status != Drawing.Status.PENDING else None
            obj.reviewed_at = timezone.now() if obj.status != Drawing.Status.PENDING else None
        super().save_model(request, obj, form, change)

    # -- the list ------------------------------------------------------------------

    def get_queryset(self, request):
        original = Subquery(
            DrawingLabelChange.objects.filter(drawing=OuterRef("pk"))
            .order_by("created", "id").values("old_label")[:1]
        )
        return super().get_queryset(request).annotate(original_label=Coalesce(original, "label"))

    @admin.display(description="drawing")
    def drawing_thumb(self, obj):
        svg = thumbnails.strokes_svg(obj.strokes, size=56, label=f"drawing of {obj.label}")
        return svg if svg is not None else "—"

    @admin.display(description="model input")
    def input_thumb(self, obj):
        url = thumbnails.input_data_url(obj.input_image)
        if url is None:
            return "—"
        return format_html('<img class="input-thumb" src="{}" width="56" height="56" '
                           'alt="28x28 input">', url)

    @admin.display(description="input (28x28)")
    def input_large(self, obj):
        url = thumbnails.input_data_url(obj.input_image)
        if url is None:
            return "the stored input is damaged"
        return format_html('<img class="input-thumb input-thumb--large" src="{}" width="168" '
                           'height="168" alt="the 28x28 input the model saw">', url)

    @admin.display(description="label", ordering="label")
    def label_display(self, obj):
        original = getattr(obj, "original_label", obj.label)
        if original != obj.label:
            return format_html('{} <span class="was-label" title="relabelled">(was {})</span>',
                               obj.label, original)
        return obj.label

    @admin.display(description="prediction", ordering="prediction")
    def prediction_display(self, obj):
        if obj.prediction != obj.label:
            return format_html('<span class="differs" title="differs from the label">{}</span>',
                               obj.prediction)
        return obj.prediction

    @admin.display(description="confidence", ordering="confidence")
    def confidence_display(self, obj):
        return f"{obj.confidence:.1%}"

    @admin.display(description="status", ordering="status")
    def status_display(self, obj):
        return format_html('<span class="status-badge status-badge--{}">{}</span>',
                           obj.status, obj.get_status_display())

    @admin.display(description="probabilities")
    def probabilities_display(self, obj):
        try:
            values = [float(p) for p in obj.probabilities][:10]
        except (TypeError, ValueError):
            return "—"
        return format_html(
            '<div class="prob-bars">{}</div>',
            format_html_join(
                "", '<div class="prob-bar{}"><span class="prob-bar__digit">{}</span>'
                '<span class="prob-bar__fill" data-width="{}"></span>'
                '<span class="prob-bar__value">{}</span></div>',
                ((" prob-bar--top" if d == obj.prediction else "", d,
                  f"{max(min(p, 1.0), 0.0) * 100:.1f}", f"{p:.1%}")
                 for d, p in enumerate(values)),
            ),
        )

    @admin.display(description="strokes")
    def replay(self, obj):
        return render_to_string("admin/recognizer/drawing/replay.html", {
            "strokes": obj.strokes, "element_id": f"strokes-{obj.pk}",
        })

    # -- actions -------------------------------------------------------------------

    def _review(self, request, queryset, status, verb):
        changed = review.set_status(queryset, status, request.user)
        self.message_user(request, f"{verb} {changed} drawing{'s' if changed != 1 else ''}.",
                          messages.SUCCESS)

    @admin.action(description="Approve selected drawings", permissions=["review"])
    def approve(self, request, queryset):
        self._review(request, queryset, Drawing.Status.APPROVED, "Approved")

    @admin.action(description="Reject selected drawings", permissions=["review"])
    def reject(self, request, queryset):
        self._review(request, queryset, Drawing.Status.REJECTED, "Rejected")

    def export_response(self, request, queryset, fmt):
        export = exports.export(queryset, fmt)
        if export.skipped:
            self.message_user(
                request, f"Left out {len(export.skipped)} drawing(s) whose stored input is "
                f"damaged: ids {', '.join(map(str, export.skipped[:20]))}.", messages.WARNING,
            )
        # Streamed: see recognizer/exports.py for how each format bounds memory.
        chunks = export.async_chunks() if isinstance(request, ASGIRequest) else export.chunks
        response = StreamingHttpResponse(chunks, content_type=export.content_type)
        name = f"drawings-{timezone.now():%Y%m%d-%H%M%S}-{export.count}.{export.extension}"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        response["X-Export-Count"] = str(export.count)
        return response

    # -- extra pages ---------------------------------------------------------------

    def get_urls(self):
        def wrap(view):
            return self.admin_site.admin_view(view)

        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("review/", wrap(self.review_queue_view), name=f"{prefix}_review"),
            path("review/batch/", wrap(self.review_batch_view), name=f"{prefix}_review_batch"),
            path("review/decide/", wrap(self.review_decide_view),
                 name=f"{prefix}_review_decide"),
            path("<path:object_id>/set-status/", wrap(self.set_status_view),
                 name=f"{prefix}_set_status"),
            path("<path:object_id>/relabel/", wrap(self.relabel_view), name=f"{prefix}_relabel"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_review": self.has_review_permission(request),
            "pending_count": review.pending_queryset().count(),
        }
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_review": self.has_review_permission(request),
            "can_relabel": self.has_relabel_permission(request),
            "digits": range(10),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def _require(self, request, allowed, what):
        if not allowed:
            raise PermissionDenied(f"you may not {what}")

    def review_queue_view(self, request):
        self._require(request, self.has_review_permission(request), "review drawings")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Review queue",
            "pending_count": review.pending_queryset().count(),
            "batch_url": reverse("admin:recognizer_drawing_review_batch"),
            "decide_url": reverse("admin:recognizer_drawing_review_decide"),
            "changelist_url": reverse("admin:recognizer_drawing_changelist"),
            "batch_size": review.QUEUE_BATCH_DEFAULT,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/recognizer/drawing/review_queue.html", context)

    def review_batch_view(self, request):
        if not self.has_review_permission(request):
            return JsonResponse({"error": "you may not review drawings"}, status=403)
        return require_GET(self._review_batch)(request)

    def _review_batch(self, request):
        try:
            batch = review.queue_batch(request.GET.get("after", 0),
                                       request.GET.get("limit", review.QUEUE_BATCH_DEFAULT))
        except review.ReviewError as exc:
            return JsonResponse({"error": str(exc)}, status=400)
        return JsonResponse(batch)

    def review_decide_view(self, request):
        if not self.has_review_permission(request):
            return JsonResponse({"error": "you may not review drawings"}, status=403)
        return require_POST(self._review_decide)(request)

    def _review_decide(self, request):
        try:
            data = json_input.loads(request.body or b"")
        except json_input.JSONInputError as exc:
            return JsonResponse({"error": f"the body is not valid JSON ({exc}); send "
                                          "{\"id\": ..., "
                                          "\"decision\": \"approve\"|\"reject\"|\"pending\"}"},
                                status=400)
        if not isinstance(data, dict):
            return JsonResponse({"error": "the body must be a JSON object"}, status=400)
        drawing_id = data.get("id")
        if isinstance(drawing_id, bool) or not isinstance(drawing_id, int):
            return JsonResponse({"error": "id must be a drawing's id (a whole number)"},
                                status=400)
        try:
            drawing = review.decide(drawing_id, data.get("decision"), request.user)
        except review.ReviewError as exc:
            return JsonResponse({"error": str(exc)}, status=400)
        except Drawing.DoesNotExist:
            return JsonResponse({"error": f"there is no drawing {drawing_id}"}, status=404)
        return JsonResponse({"id": drawing.pk, "status": drawing.status})

    def _object_or_404(self, object_id):
        return get_object_or_404(Drawing, pk=unquote(object_id))

    def _back(self, drawing):
        return HttpResponseRedirect(reverse("admin:recognizer_drawing_change", args=[drawing.pk]))

    def set_status_view(self, request, object_id):
        self._require(request, self.has_review_permission(request), "review drawings")
        return require_POST(self._set_status)(request, object_id)

    def _set_status(self, request, object_id):
        drawing = self._object_or_404(object_id)
        try:
            status = review.parse_decision(request.POST.get("status", ""))
        except review.ReviewError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return self._back(drawing)
        review.set_status(Drawing.objects.filter(pk=drawing.pk), status, request.user)
        self.message_user(request, f"Drawing {drawing.pk} is now {status.label.lower()}.",
                          messages.SUCCESS)
        return self._back(drawing)

    def relabel_view(self, request, object_id):
        self._require(request, self.has_relabel_permission(request), "relabel drawings")
        return require_POST(self._relabel)(request, object_id)

    def _relabel(self, request, object_id):
        drawing = self._object_or_404(object_id)
        try:
            changed = review.relabel(Drawing.objects.filter(pk=drawing.pk),
                                     request.POST.get("label", ""), request.user)
        except review.ReviewError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return self._back(drawing)
        if changed:
            drawing.refresh_from_db(fields=["label"])
            self.message_user(request, f"Drawing {drawing.pk} is now labelled "
                              f"{drawing.label}.", messages.SUCCESS)
        else:
            self.message_user(request, "The label was already that digit.", messages.INFO)
        return self._back(drawing)


# -- model versions ------------------------------------------------------------------------

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


def confusion_grid(matrix):
    """Rows of cells for the confusion matrix template, each with its colour.

    Shades follow the fraction of the true digit's samples in the cell: green
    on the diagonal (right), red off it (wrong), so rare mistakes stay visible
    next to thousands of correct answers.
    """
    try:
        rows = [[int(v) for v in row] for row in matrix]
    except (TypeError, ValueError):
        return None
    if len(rows) != 10 or any(len(r) != 10 for r in rows):
        return None
    grid = []
    for true_digit, row in enumerate(rows):
        total = sum(row)
        cells = []
        for predicted, count in enumerate(row):
            share = count / total if total else 0.0
            colour = confusion_colour(count, total, predicted == true_digit)
            cells.append({"count": count, "share": share, "colour": colour,
                          "diagonal": predicted == true_digit, "predicted": predicted})
        grid.append({"digit": true_digit, "total": total, "cells": cells})
    return grid


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
        return _perm(request, "activate_modelversion")

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
            return "—"
        parts = []
        if data.get("mnist_train") is not None:
            parts.append(f"{data['mnist_train']:,} MNIST")
        if data.get("collected"):
            parts.append(f"{data['collected']:,} drawings")
        return " + ".join(parts) or "—"

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
