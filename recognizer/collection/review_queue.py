"""The admin's review queue: its page, and the JSON endpoints its script uses.

The page (review_queue.html with static/js/admin/review-queue.js) fetches
pending drawings in batches and posts one decision per drawing; both go
through recognizer/collection/review.py, as every other decision does. Only
users with the "review_drawing" permission get in.
"""

from django.http import JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_POST

from recognizer import json_input
from recognizer.admin.base import require
from recognizer.collection import review
from recognizer.models import Drawing


class ReviewQueueViews:
    """The queue's views, for the drawings' ModelAdmin (which has
    has_review_permission)."""

    def review_queue_urls(self, wrap, prefix):
        return [
            path("review/", wrap(self.review_queue_view), name=f"{prefix}_review"),
            path("review/batch/", wrap(self.review_batch_view), name=f"{prefix}_review_batch"),
            path("review/decide/", wrap(self.review_decide_view),
                 name=f"{prefix}_review_decide"),
        ]

    def review_queue_view(self, request):
        require(self.has_review_permission(request), "review drawings")
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
