"""Bulk review actions on thousands of drawings run as many short transactions.

SQLite has one write lock for the whole database, and the game's writes wait
for it: "relabel all" on 20,000 drawings in one transaction held it 2.2 s and
delayed a live guess as long. The actions now commit every BULK_BATCH
drawings. The tests count the transactions (the BEGINs SQLite is sent) and the
drawings each one changes, and check that the outcome (labels, statuses,
reviewers, label history) is what one big transaction gave.
"""

import math
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from recognizer.collection import review
from recognizer.models import Drawing, DrawingLabelChange

pytestmark = pytest.mark.django_db(transaction=True)

COUNT = 2_300  # 4.6 batches: the last one is partial
BLANK = bytes(784)
IN_LIST = re.compile(r'"id" IN \(([^)]*)\)')


def make_drawings(count=COUNT):
    Drawing.objects.bulk_create(
        Drawing(label=i % 10, strokes={"width": 10, "height": 10, "strokes": [[[1, 1, 0]]]},
                input_image=BLANK, prediction=i % 10, probabilities=[0.1] * 10,
                player_id=f"p{i % 7}", player_name=f"player {i % 7}", game_id=f"g{i}",
                round_number=1, status="approved" if i % 11 == 0 else "pending")
        for i in range(count)
    )
    return dict(Drawing.objects.values_list("id", "label"))


def transactions(queries):
    """The statements of each transaction, split at each BEGIN (which only SQLite is sent)."""
    if connection.vendor != "sqlite":
        pytest.skip("counts the BEGINs Django sends SQLite; PostgreSQL's are implicit")
    groups = []
    for query in queries:
        sql = query["sql"]
        if sql.startswith("BEGIN"):
            groups.append([])
        elif groups:
            groups[-1].append(sql)
    return groups


def rows_updated(statements):
    """How many ids the UPDATEs of one transaction name."""
    return sum(len(match.group(1).split(","))
               for sql in statements if sql.startswith("UPDATE")
               for match in IN_LIST.finditer(sql))


def assert_batched(queries, changed):
    groups = [g for g in transactions(queries) if any(s.startswith("UPDATE") for s in g)]
    assert len(groups) == math.ceil(changed / review.BULK_BATCH) >= 4
    sizes = [rows_updated(g) for g in groups]
    assert max(sizes) <= review.BULK_BATCH
    return sizes


def test_relabel_all_commits_in_batches_and_keeps_every_history_row(django_user_model):
    """Hostile input: "relabel all" over a few thousand drawings of every label."""
    before = make_drawings()
    user = django_user_model.objects.create_user("max", password="pw-12345-long")
    with CaptureQueriesContext(connection) as captured:
        changed = review.relabel(Drawing.objects.all(), 3, user)

    expected_changes = {pk: label for pk, label in before.items() if label != 3}
    assert changed == len(expected_changes) == 2_070
    sizes = assert_batched(captured.captured_queries, changed)
    # Each batch updates its drawings once for the label (the history rows
    # are INSERTs).
    assert sum(sizes) == changed

    assert set(Drawing.objects.values_list("label", flat=True)) == {3}
    history = list(DrawingLabelChange.objects.values_list(
        "drawing_id", "old_label", "new_label", "user__username"))
    assert sorted(history) == sorted(
        (pk, old, 3, "max") for pk, old in expected_changes.items())
    # Again: nothing to change, no transaction, no history.
    with CaptureQueriesContext(connection) as captured:
        assert review.relabel(Drawing.objects.all(), 3, user) == 0
    assert transactions(captured.captured_queries) == []
    assert DrawingLabelChange.objects.count() == changed


@pytest.mark.parametrize("status", ["approved", "rejected", "pending"])
def test_approve_reject_all_commit_in_batches(django_user_model, status):
    """Hostile input: approve/reject/undo on a few thousand drawings, some already decided."""
    make_drawings()
    user = django_user_model.objects.create_user("rita", password="pw-12345-long")
    if status == "pending":
        # Undoing: most drawings decided, some still pending.
        Drawing.objects.filter(id__in=Drawing.objects.filter(status="pending")[:2_000]
                               .values("id")).update(status="rejected", reviewed_by=user)
    before = dict(Drawing.objects.values_list("id", "status"))
    with CaptureQueriesContext(connection) as captured:
        changed = review.set_status(Drawing.objects.all(), status, user)

    assert changed == sum(1 for s in before.values() if s != status)
    assert_batched(captured.captured_queries, changed)
    rows = list(Drawing.objects.values_list("id", "status", "reviewed_by__username",
                                            "reviewed_at"))
    assert {s for _, s, _, _ in rows} == {status}
    changed_rows = [r for r in rows if before[r[0]] != status]
    if status == "pending":
        assert all(who is None and at is None for _, _, who, at in changed_rows)
    else:
        # One decision: one reviewer and one time for all, as before.
        assert {(who, at) for _, _, who, at in changed_rows} == {("rita", changed_rows[0][3])}
        assert changed_rows[0][3] is not None


def test_the_admin_action_on_all_drawings_is_batched(admin_client):
    """The admin's "select all N drawings" path reaches the batched functions."""
    before = make_drawings()
    with CaptureQueriesContext(connection) as captured:
        response = admin_client.post(reverse("admin:recognizer_drawing_changelist"), {
            "action": "relabel_as_5", "select_across": "1", "index": 0,
            "_selected_action": [next(iter(before))],
        })
    assert response.status_code == 302
    changed = sum(1 for label in before.values() if label != 5)
    assert_batched(captured.captured_queries, changed)
    assert set(Drawing.objects.values_list("label", flat=True)) == {5}
    assert DrawingLabelChange.objects.count() == changed
