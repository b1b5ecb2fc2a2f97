"""The text part made from HTML (inscriptis): readable links, paragraphs, no markup."""

from __future__ import annotations

import importlib.util

from tidings.campaigns import content


def test_links_stay_readable_and_a_placeholder_link_is_its_text():
    text = content.html_to_text(
        '<p>Read <a href="https://x.example/a?b=1&amp;c=2">the news</a> or <a href="#">not</a>.</p>'
    )
    assert text == "Read [the news](https://x.example/a?b=1&c=2) or not.\n"


def test_a_layout_table_is_read_as_paragraphs_and_a_data_table_as_a_grid():
    html = (
        '<table role="presentation"><tr><td><h1>Hello</h1><p>First.</p></td></tr>'
        "<tr><td><table><tr><th>size</th><th>price</th></tr>"
        "<tr><td>small</td><td>3 €</td></tr></table></td></tr>"
        "<tr><td><p>Footer</p></td></tr></table>"
    )
    text = content.html_to_text(html)
    assert text.startswith("Hello\n\nFirst.\n\n")
    assert "size   price\nsmall  3 €" in text
    assert text.endswith("\n\nFooter\n")


def test_hidden_elements_styles_and_scripts_leave_no_text():
    html = (
        "<style>p { color: red }</style><script>alert(1)</script>"
        '<div style="display: none">teaser</div><p>Body <b>bold</b> <em>soft</em></p>'
    )
    assert content.html_to_text(html) == "Body bold soft\n"


def test_the_gpl_converter_is_gone():
    assert importlib.util.find_spec("html2text") is None
