"""A digit in a sentence of the server's pages: "a 7" but "an 8"."""

import pytest

from recognizer.templatetags.digits import article, with_article


@pytest.mark.parametrize("number, expected", [
    (0, "a"), (1, "a"), (7, "a"), (8, "an"), (9, "a"), (11, "an"), (18, "an"), (80, "an"),
    (89, "an"), (100, "a"), (800, "an"), (1800, "a"), (8000, "an"), (11000, "an"),
    (18500, "an"), (110000, "a"), ("8", "an"), (-8, "a"), (None, "a"),
])
def test_the_article_is_the_one_the_number_is_read_with(number, expected):
    assert article(number) == expected


def test_with_article_puts_it_before_the_number():
    assert with_article(8) == "an 8"
    assert with_article(3) == "a 3"


def test_the_data_page_says_drawings_of_an_8(client, settings, tmp_path, db):
    settings.MNIST_DATA_DIR = tmp_path / "no-mnist-here"
    html = client.get("/learn/data/?digit=8").content.decode()
    assert "No approved player drawings of an 8 yet" in html
    assert "of a 8" not in html
