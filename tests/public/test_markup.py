"""The policy's Markdown subset is rendered safely."""

from tidings.public.markup import to_html


def test_headings_paragraphs_and_lists_become_html():
    html = to_html("# Title\n\n## Who we are\n\nOne\nparagraph.\n\n- first\n- second\n")

    assert html == (
        '<h2 id="title">Title</h2>\n<h2 id="who-we-are">Who we are</h2>\n'
        "<p>One paragraph.</p>\n<ul><li>first</li><li>second</li></ul>"
    )


def test_links_to_web_mail_and_site_addresses_become_anchors():
    html = to_html("[a](https://x.example/p?q=1&r=2) [b](mailto:p@x.example) [c](/contact/)")

    assert '<a href="https://x.example/p?q=1&amp;r=2">a</a>' in html
    assert '<a href="mailto:p@x.example">b</a>' in html
    assert '<a href="/contact/">c</a>' in html


def test_dangerous_links_stay_text():
    html = to_html("[x](javascript:alert(1)) [y](//evil.example/) [z](data:text/html,hi)")

    assert "<a " not in html


def test_html_in_the_text_is_escaped():
    html = to_html('## <img src=x onerror="boom">\n\n<script>alert(1)</script> `<b>`')

    assert "<img" not in html and "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;" in html
    assert "<code>&lt;b&gt;</code>" in html


def test_markdown_emphasis_numbered_lists_and_continued_items():
    html = to_html("Some *stress* and **weight**.\n\n3. third\n4. fourth\n\n- one\n  more")

    assert "<em>stress</em>" in html and "<strong>weight</strong>" in html
    assert '<ol start="3">' in html and "<li>third</li><li>fourth</li>" in html
    assert "<ul><li>one more</li></ul>" in html


def test_images_and_raw_html_blocks_never_become_elements():
    html = to_html('![pixel](https://t.example/p.gif)\n\n<div onclick="x()">\nhi\n</div>')

    assert "<img" not in html and "<div" not in html and "onclick=" not in html.split("&lt;")[0]
    assert "&lt;div" in html
