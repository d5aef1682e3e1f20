"""The admin for collected drawings: the list, one drawing's page, and their actions.

Reviewers approve, reject and relabel (recognizer/collection/review.py) from
the list's actions, a drawing's page or the review queue
(recognizer/collection/review_queue.py); exports stream the selection as
training data (recognizer/collection/exports.py). Each needs its own
permission (recognizer/admin/__init__.py). Django's admin discovery imports
this module as the admin of the collection's app (apps.py).
"""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.handlers.asgi import ASGIRequest
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from recognizer.admin.base import (
    ADMIN_CSS,
    ADMIN_JS,
    RefuseForbiddenActionsMixin,
    has_perm,
    require,
)
from recognizer.collection import exports, review, thumbnails
from recognizer.collection.list_filters import (
    ConfidenceFilter,
    DiffersFilter,
    EndingFilter,
    LabelFilter,
    PlayerLabelFilter,
    PredictionFilter,
)
from recognizer.collection.review_queue import ReviewQueueViews
from recognizer.metrics_display import UNKNOWN, percent
from recognizer.models import Drawing, DrawingLabelChange


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
        return has_perm(request, "view_drawing") or has_perm(request, "change_drawing")

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
class DrawingAdmin(ReviewQueueViews, RefuseForbiddenActionsMixin, admin.ModelAdmin):
    list_display = (
        "id", "drawing_thumb", "input_thumb", "label_display", "prediction_display",
        "confidence_display", "model_version", "player_name", "room_code", "ending",
        "created", "status_display",
    )
    list_display_links = ("id", "drawing_thumb")
    list_filter = (
        "status", LabelFilter, PredictionFilter, DiffersFilter, PlayerLabelFilter,
        ConfidenceFilter, EndingFilter, "model_version", "created",
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
        ("Review", {"fields": ("status", "reviewed_by", "reviewed_at", "player_label",
                               "player_label_at")}),
        ("Origin", {"fields": ("player_name", "player_id", "user", "room_code", "game_id",
                               "round_number", "ending", "source", "created",
                               "model_version")}),
    )

    class Media:
        css = {"all": ADMIN_CSS}
        js = ADMIN_JS

    # -- permissions ----------------------------------------------------------

    def has_add_permission(self, request):
        return False  # drawings come from games, never typed in

    def has_review_permission(self, request):
        return has_perm(request, "review_drawing")

    def has_relabel_permission(self, request):
        return has_perm(request, "relabel_drawing")

    def has_export_permission(self, request):
        return has_perm(request, "export_drawings")

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
        return svg if svg is not None else UNKNOWN

    @admin.display(description="model input")
    def input_thumb(self, obj):
        url = thumbnails.input_data_url(obj.input_image)
        if url is None:
            return UNKNOWN
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
        shown = obj.label
        if original != obj.label:
            shown = format_html('{} <span class="was-label" title="relabelled">(was {})</span>',
                                obj.label, original)
        if obj.player_label is not None:
            # The player's own word after the game, for the reviewer to weigh.
            shown = format_html('{} <span class="player-label" title="the player says this '
                                'drawing is a {}">(player says {})</span>', shown,
                                obj.player_label, obj.player_label)
        return shown

    @admin.display(description="prediction", ordering="prediction")
    def prediction_display(self, obj):
        if obj.prediction != obj.label:
            return format_html('<span class="differs" title="differs from the label">{}</span>',
                               obj.prediction)
        return obj.prediction

    @admin.display(description="confidence", ordering="confidence")
    def confidence_display(self, obj):
        return percent(obj.confidence, digits=1)

    @admin.display(description="status", ordering="status")
    def status_display(self, obj):
        return format_html('<span class="status-badge status-badge--{}">{}</span>',
                           obj.status, obj.get_status_display())

    @admin.display(description="probabilities")
    def probabilities_display(self, obj):
        try:
            values = [float(p) for p in obj.probabilities][:10]
        except (TypeError, ValueError):
            return UNKNOWN
        return format_html(
            '<div class="prob-bars">{}</div>',
            format_html_join(
                "", '<div class="prob-bar{}"><span class="prob-bar__digit">{}</span>'
                '<span class="prob-bar__fill" data-width="{}"></span>'
                '<span class="prob-bar__value">{}</span></div>',
                ((" prob-bar--top" if d == obj.prediction else "", d,
                  f"{max(min(p, 1.0), 0.0) * 100:.1f}", percent(p, digits=1))
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
        # Streamed: see recognizer/collection/exports.py for how each format bounds memory.
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
            *self.review_queue_urls(wrap, prefix),
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

    def _object_or_404(self, object_id):
        return get_object_or_404(Drawing, pk=unquote(object_id))

    def _back(self, drawing):
        return HttpResponseRedirect(reverse("admin:recognizer_drawing_change", args=[drawing.pk]))

    def set_status_view(self, request, object_id):
        require(self.has_review_permission(request), "review drawings")
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
        require(self.has_relabel_permission(request), "relabel drawings")
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

