"""The filters beside the drawings' list in the admin.

Digits and round endings are fixed choices (no scan of the table to list
them); confidence is filtered in buckets of the stored `confidence` column.
"""

from django.contrib import admin
from django.db.models import F, Q

from recognizer.collection import review
from recognizer.models import Drawing


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


class PlayerLabelFilter(admin.SimpleListFilter):
    """Drawings whose player said which digit they are after the game
    (Drawing.player_label), and those where that is not the label."""

    title = "player's correction"
    parameter_name = "player_says"

    def lookups(self, request, model_admin):
        return [("any", "The player said"), ("differs", "The player says another digit"),
                ("none", "No word from the player")]

    def queryset(self, request, queryset):
        if self.value() == "any":
            return queryset.filter(player_label__isnull=False)
        if self.value() == "differs":
            return queryset.filter(player_label__isnull=False).exclude(label=F("player_label"))
        if self.value() == "none":
            return queryset.filter(player_label__isnull=True)
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


class EndingFilter(admin.SimpleListFilter):
    """How the player's round ended (Drawing.Ending), and "complete": the
    endings whose drawing the player finished (reached with the pen lifted,
    or done), as against those the timer, a disconnect, leaving or the host
    may have cut off mid-stroke."""

    title = "round ended by"
    parameter_name = "ending"
    COMPLETE = "complete"
    COMPLETE_ENDINGS = (Drawing.Ending.REACHED, Drawing.Ending.DONE)

    def lookups(self, request, model_admin):
        return [(self.COMPLETE, "Complete (reached or done)"), *Drawing.Ending.choices]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if value == self.COMPLETE:
            return queryset.filter(ending__in=self.COMPLETE_ENDINGS)
        if value in Drawing.Ending.values:
            return queryset.filter(ending=value)
        return queryset.none()
