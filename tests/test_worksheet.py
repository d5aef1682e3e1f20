"""The printable worksheet (/learn/worksheet/) against the lesson pages.

Both render recognizer/teaching/lesson_plans.py; these tests parse the HTML of
each lesson page's "For teachers" box and of the worksheet and compare what a
reader sees, so a lesson page that went back to its own copy of the words (or
a worksheet that did) would fail. Printing itself (the menus hidden, a page
per lesson) is checked in Chromium in tests/test_teaching_pages_browser.py.
"""

from html import unescape
from html.parser import HTMLParser

import pytest

from recognizer.teaching import lesson_plans
from recognizer.teaching.views import LESSONS

pytestmark = pytest.mark.django_db

LESSON_PATHS = {
    "teaching:how_it_works": "/learn/how-it-works/",
    "teaching:attention": "/learn/attention/",
    "teaching:model": "/learn/model/",
    "teaching:data": "/learn/data/",
    "teaching:how_it_learned": "/learn/how-it-learned/",
}


class Marked(HTMLParser):
    """The text of every element carrying one of `attributes` (data-*), in the order
    met, each with the nearest enclosing value of `scope` (an attribute too), and
    the items (<li>) inside lists so marked."""

    def __init__(self, attributes, scope="data-worksheet-lesson"):
        super().__init__(convert_charrefs=True)
        self.attributes, self.scope = attributes, scope
        self.stack = []  # (tag, attrs) of the open elements
        self.found = []  # (scope value, attribute, text, [item texts])
        self.open = []  # indices into found being filled

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("br", "img", "input", "meta", "link"):
            return
        self.stack.append((tag, attrs, len(self.open)))
        scope = next((a.get(self.scope) for _, a, _ in reversed(self.stack)
                      if a.get(self.scope)), None)
        for attribute in self.attributes:
            if attribute in attrs:
                self.found.append([scope, attribute, "", []])
                self.open.append(len(self.found) - 1)
        if tag == "li":
            for index in self.open:
                self.found[index][3].append("")

    def handle_endtag(self, tag):
        while self.stack:
            open_tag, _, opened = self.stack.pop()
            del self.open[opened:]
            if open_tag == tag:
                break

    def handle_data(self, data):
        for index in self.open:
            self.found[index][2] += data
            if self.found[index][3]:
                self.found[index][3][-1] += data


def words(text):
    return " ".join(unescape(text).split())


def parse(html, *attributes):
    parser = Marked(attributes)
    parser.feed(html)
    return [(scope, attribute, words(text), [words(item) for item in items])
            for scope, attribute, text, items in parser.found]


def lesson_box(client, url_name):
    """(objectives, minutes, notes) as the lesson page's "For teachers" box shows them."""
    html = client.get(LESSON_PATHS[url_name]).content.decode()
    found = parse(html, "data-teacher-notes", "data-objectives", "data-lesson-minutes",
                  "data-notes")
    assert [a for _, a, _, _ in found].count("data-teacher-notes") == 1, url_name
    objectives = [items for _, a, _, items in found if a == "data-objectives"]
    minutes = [text for _, a, text, _ in found if a == "data-lesson-minutes"]
    notes = [text for _, a, text, _ in found if a == "data-notes"]
    assert len(objectives) == len(minutes) == len(notes) == 1, url_name
    return objectives[0], int(minutes[0]), notes[0]


def worksheet_sheets(client):
    """{lesson url name: (title, objectives, minutes, notes, questions)} as printed."""
    html = client.get("/learn/worksheet/").content.decode()
    found = parse(html, "data-worksheet-lesson", "data-objectives", "data-lesson-minutes",
                  "data-notes", "data-questions", "data-activities")
    sheets = {}
    for scope, attribute, text, items in found:
        if scope is None:
            continue
        sheet = sheets.setdefault(scope, {})
        assert attribute not in sheet, (scope, attribute)
        sheet[attribute] = (text, items)
    return html, sheets


def test_the_worksheet_prints_every_lessons_objectives_as_its_page_shows_them(client):
    html, sheets = worksheet_sheets(client)
    assert list(sheets) == [name for name, _, _ in LESSONS]
    for name, title, _ in LESSONS:
        objectives, minutes, notes = lesson_box(client, name)
        sheet = sheets[name]
        assert sheet["data-objectives"][1] == objectives, name
        assert len(objectives) >= 3 and all(objectives), name
        assert int(sheet["data-lesson-minutes"][0]) == minutes, name
        assert sheet["data-notes"][0] == notes and len(notes) > 40, name
        assert title in sheet["data-worksheet-lesson"][0], name
        assert len(sheet["data-activities"][1]) >= 3, name
        assert len(sheet["data-questions"][1]) >= 4, name
    # A reader of the lesson pages sees the words of the one list, unchanged.
    first = lesson_plans.BY_URL_NAME["teaching:how_it_works"]
    assert lesson_box(client, "teaching:how_it_works")[0] == list(first.objectives)


def test_every_question_has_its_lines_to_write_on(client):
    html = client.get("/learn/worksheet/").content.decode()
    for plan in lesson_plans.PLANS:
        for question in plan.questions:
            # The text, then its ruled lines: one empty <span> a line.
            text = question.text.replace("'", "&#x27;")
            at = html.index(text)
            block = html[at:html.index("</div>", at)]
            assert f'data-answer-lines="{question.lines}"' in block
            assert block.count("<span></span>") == question.lines >= 2


def test_the_start_page_and_every_lessons_notes_link_the_worksheet(client):
    start = client.get("/learn/").content.decode()
    assert 'href="/learn/worksheet/" data-worksheet-link' in start
    assert f"<span data-total-minutes>{lesson_plans.TOTAL_MINUTES}</span>" in start
    sheet_html = client.get("/learn/worksheet/").content.decode()
    for name, path in LESSON_PATHS.items():
        html = client.get(path).content.decode()
        box = html[html.index("data-teacher-notes"):html.index("</details>")]
        anchor = lesson_plans.BY_URL_NAME[name].anchor
        assert f'href="/learn/worksheet/#{anchor}" data-worksheet-link' in box, name
        # The anchor lands on that lesson's sheet.
        assert f'id="{anchor}" data-worksheet-lesson="{name}"' in sheet_html, name


def test_no_template_comment_reaches_the_page(client):
    # A {# #} comment spanning two lines is not a comment to Django: base.html's
    # header once showed one on every page.
    for path in ("/learn/worksheet/", "/learn/"):
        html = client.get(path).content.decode()
        assert "{#" not in html and "#}" not in html and "{% comment" not in html, path


def test_the_sheets_say_where_each_lesson_is(client):
    _, sheets = worksheet_sheets(client)
    for name, path in LESSON_PATHS.items():
        # On paper a link is its words: the whole address is printed.
        assert f"on the page http://testserver{path}" in sheets[name]["data-worksheet-lesson"][0]


def test_every_lesson_has_a_plan_and_every_plan_a_lesson():
    assert [p.url_name for p in lesson_plans.PLANS] == [name for name, _, _ in LESSONS]
    assert lesson_plans.TOTAL_MINUTES == sum(p.minutes for p in lesson_plans.PLANS) == 95
