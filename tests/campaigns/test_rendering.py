"""Campaign content is rendered per contact: personalised, escaped, converted, laid out,
CSS inlined, with a plain-text part."""

from __future__ import annotations

import pytest

from tidings.audience import services
from tidings.audience.models import Contact
from tidings.campaigns import content, rendering
from tidings.campaigns.models import Campaign, Layout


@pytest.fixture
def campaign(customer):  # type: ignore[no-untyped-def]
    return Campaign.objects.create(
        account=customer.account,
        name="November news",
        subject="Hello {{ contact.first_name | default('friend', true) }}",
        from_email="news@example.org",
        body="<p>Dear {{ contact.name }}, you live in {{ contact.attributes.city }}.</p>",
    )


def contact(**fields: object) -> Contact:
    """An unsaved contact: rendering needs no database."""
    values: dict[str, object] = {"email": "bob@example.org", "name": "Bob Stone", "attributes": {}}
    return Contact(**(values | fields))


def make(body: str, *, fmt: str = Campaign.Format.MARKDOWN, **fields: object) -> Campaign:
    values: dict[str, object] = {
        "name": "News",
        "subject": "Hi",
        "from_name": "Acme",
        "from_email": "news@acme.example",
        "content_format": fmt,
        "body": body,
    }
    return Campaign(**(values | fields))


def test_content_is_personalised_and_escaped(customer, campaign):
    bob = services.add_contact(
        customer.account, "bob@example.org", name="Bob <b>Stone</b>", attributes={"city": "Ghent"}
    )
    out = rendering.render(campaign, bob)
    assert out.subject == "Hello Bob"
    assert "Bob &lt;b&gt;Stone&lt;/b&gt;" in out.html and "Ghent" in out.html
    assert "<b>Stone" not in out.html


def test_an_empty_name_falls_back(customer, campaign):
    anon = services.add_contact(customer.account, "anon@example.org")
    assert rendering.render(campaign, anon).subject == "Hello friend"


def test_default_covers_empty_and_missing_values_without_the_boolean_flag():
    c = make(
        '{{ contact.first_name | default("there") }} in '
        '{{ contact.attributes.city | default("your town") }}',
        fmt=Campaign.Format.HTML,
        subject='Hi {{ contact.first_name | default("there") }}',
    )
    out = rendering.render(c, contact(name="", attributes={}))
    assert out.subject == "Hi there"
    assert "there in your town" in out.html
    named = rendering.render(c, contact(name="Ana Lima", attributes={"city": "Porto"}))
    assert named.subject == "Hi Ana" and "Ana in Porto" in named.html


def test_a_missing_attribute_renders_empty_at_send_time():
    c = make("[{{ contact.attributes.nope }}][{{ contact.attributes.a.b.c }}]", fmt="html")
    assert "[][]" in rendering.render(c, contact()).html


def test_contact_fields_available_to_templates():
    c = make(
        "{{ contact.email }}|{{ contact.name }}|{{ contact.first_name }}|{{ contact.last_name }}"
        "|{{ contact.attributes.plan }}",
        fmt="html",
    )
    html = rendering.render(c, contact(name="Ana de Lima", attributes={"plan": "gold"})).html
    assert "bob@example.org|Ana de Lima|Ana|de Lima|gold" in html


def test_markdown_keeps_template_tags_with_quotes_pipes_and_underscores():
    c = make(
        '# Hello {{ contact.first_name | default("there") }}\n\n'
        "Your *city*: {{ contact.attributes.home_city | default('somewhere') }}.\n\n"
        "{% if contact.attributes.vip %}\n\nYou are **VIP**.\n\n{% endif %}\n"
    )
    html = rendering.render(c, contact(attributes={"home_city": "Ghent", "vip": True})).html
    assert "Hello Bob</h1>" in html
    assert "<em>city</em>: Ghent." in html
    assert "<strong>VIP</strong>" in html
    quiet = rendering.render(c, contact(attributes={})).html
    assert "VIP" not in quiet and "somewhere" in quiet
    # A statement alone on its line leaves no empty paragraph behind.
    assert "<p></p>" not in quiet.replace(" ", "")


def test_html_inside_markdown_is_sanitised():
    c = make(
        "Hello\n\n<script>alert(1)</script><img src=x onerror=alert(2)>"
        '<a href="javascript:alert(3)">x</a><b onclick="evil()">bold</b>'
    )
    html = rendering.render(c, contact()).html
    assert "<script" not in html and "alert" not in html and "onclick" not in html
    assert "onerror" not in html and "javascript:" not in html
    assert "<b" in html and "bold</b>" in html


def test_markdown_tables_and_links():
    c = make("| a | b |\n|---|---|\n| 1 | 2 |\n\n[site](https://example.org/x?a=1&b=2)")
    html = rendering.render(c, contact()).html
    assert "<table" in html and "<td" in html
    assert 'href="https://example.org/x?a=1&amp;b=2"' in html


def test_rich_text_is_sanitised_keeping_template_tags():
    dirty = (
        '<p onclick="x()">Hi {{ contact.first_name | default("there") }}</p>'
        '<script>alert(1)</script><a href="{{ unsubscribe_url }}">leave</a>'
        '<iframe src="https://evil.example"></iframe><p style="color:red">styled</p>'
    )
    clean = content.sanitise(dirty)
    assert "onclick" not in clean and "<script" not in clean and "<iframe" not in clean
    assert 'style="' not in clean
    assert '{{ contact.first_name | default("there") }}' in clean
    assert 'href="{{ unsubscribe_url }}"' in clean


def test_rich_text_refuses_a_tag_it_would_have_to_drop():
    with pytest.raises(rendering.TemplateError, match="line 2"):
        content.sanitise('<p>a</p>\n<p onclick="{% if x %}">b</p><p>{% endif %}</p>')


def test_raw_html_is_kept_as_written_and_still_sandboxed():
    c = make(
        '<div class="mine" style="color: #123456">{{ contact.first_name }}</div>'
        "{{ ''.__class__ }}",
        fmt=Campaign.Format.HTML,
    )
    html = rendering.render(c, contact()).html
    assert 'class="mine"' in html and "color: #123456" in html and ">Bob</div>" in html
    assert "class 'str'" not in html


def test_css_is_inlined_and_media_queries_kept():
    html = rendering.render(make("# Title\n\nText"), contact()).html
    assert '<h1 style="' in html and "font-size: 26px" in html
    assert '<p style="margin: 0 0 16px 0;">Text</p>' in html
    # Only the responsive rules stay in a <style> block; every other rule is inlined.
    assert html.count("<style>") == 1 and "@media" in html
    assert ".content h1" not in html


def test_a_layout_cannot_load_a_stylesheet_from_a_file_or_the_network(tmp_path):
    secret = tmp_path / "secret.css"
    secret.write_text("p { color: #c0ffee; }")
    layout = Layout(
        name="x",
        html=f'<html><head><link rel="stylesheet" href="file://{secret}">'
        '<link rel="stylesheet" href="http://127.0.0.1:9/x.css"></head>'
        "<body>{{ content }}</body></html>",
    )
    html = rendering.render(make("text", layout=layout), contact()).html
    assert "c0ffee" not in html and "<link" not in html


def test_plain_text_part_keeps_links_and_drops_the_preheader():
    c = make(
        "# Title\n\n1. Read [our news](https://acme.example/news) - now.\n\n"
        "Plain *text* with 1. numbers.",
        preheader="Hidden inbox teaser",
    )
    out = rendering.render(c, contact(), links={"unsubscribe_url": "https://t.example/u/1"})
    assert "[our news](https://acme.example/news)" in out.text
    assert "[Unsubscribe](https://t.example/u/1)" in out.text
    assert "Hidden inbox teaser" not in out.text and "Hidden inbox teaser" in out.html
    assert "Title" in out.text and "# Title" not in out.text
    assert "\\" not in out.text and "*" not in out.text and "<" not in out.text
    assert out.preheader == "Hidden inbox teaser"


def test_text_made_once_per_campaign_matches_converting_each_message():
    c = make(
        "# Hello {{ contact.name }}\n\nA [link](https://x.example/{{ contact.email }}).\n\n"
        "- one\n- two & three\n\n> quoted",
        preheader="teaser",
    )
    bob = contact(name="Bob <Stone>")
    prepared = rendering.prepare(c)
    assert prepared.body_text is not None and prepared.layout_text is not None
    fast = rendering.render(c, bob).text
    slow = rendering.Prepared(**{**prepared.__dict__, "body_text": None}).render(
        {"contact": rendering.contact_context(bob), "campaign": rendering.campaign_context(c)}
        | rendering.DEFAULT_LINKS
    )
    assert fast == slow.text
    assert "Bob <Stone>" in fast  # text is not HTML: nothing escaped


def test_layout_slot_links_and_preheader():
    layout = Layout(
        name="Mine",
        html="<html><body><span class=pre>{{ preheader }}</span><main>{{ content }}</main>"
        '<footer><a href="{{ unsubscribe_url }}">Leave</a> <a href="{{ preferences_url }}">'
        "Prefs</a> {{ subject }}</footer></body></html>",
    )
    c = make("Body **here**", layout=layout, subject="S {{ contact.first_name }}", preheader="P")
    out = rendering.render(c, contact())
    assert "<main><p>Body <strong>here</strong></p></main>" in out.html
    assert out.text == "P\n\nBody here\n\nLeave Prefs S Bob\n".replace("P\n\n", "")
    assert 'href="#">Leave' in out.html and 'href="#">Prefs' in out.html
    assert "S Bob</footer>" in out.html and '<span class="pre">P</span>' in out.html
    real = rendering.render(
        c,
        contact(),
        links={"unsubscribe_url": "https://t.example/u?a=1&b=2", "preferences_url": "https://p"},
    )
    assert 'href="https://t.example/u?a=1&amp;b=2">Leave' in real.html
    assert "[Leave](https://t.example/u?a=1&b=2)" in real.text


def test_links_must_be_url_variables():
    with pytest.raises(ValueError, match="_url"):
        rendering.render(make("x"), contact(), links={"contact": "https://x"})


def test_default_layout_has_preheader_footer_and_is_accessible():
    html = rendering.render(
        make("Hi", preheader="Teaser text"),
        contact(),
        links={"unsubscribe_url": "https://u.example/1", "preferences_url": "https://p.example/1"},
    ).html
    assert '<html lang="en"' in html and 'name="viewport"' in html
    assert (
        'style="display: none; max-height: 0; overflow: hidden; mso-hide: all;">Teaser text' in html
    )
    assert 'role="presentation"' in html and "max-width: 600px" in html
    assert 'href="https://u.example/1"' in html and 'href="https://p.example/1"' in html
    assert "Unsubscribe</a>" in html


def test_subject_is_one_line_and_not_html_escaped():
    c = make("x", subject="Tom & Jerry\n  {{ contact.first_name }}")
    assert rendering.render(c, contact(name="<Bob>")).subject == "Tom & Jerry <Bob>"


def test_a_campaign_is_prepared_once_for_many_contacts():
    # `render` runs in a render process (renderpool), with the same cache as here.
    rendering._prepare.cache_clear()
    c = make("Hello {{ contact.first_name }}")
    for _ in range(20):
        rendering.prepare(c)
    info = rendering._prepare.cache_info()
    assert info.misses == 1 and info.hits == 19


def test_the_sender_learns_which_links_the_message_already_offers():
    assert rendering.render(make("x"), contact()).links_used == {
        "unsubscribe_url",
        "preferences_url",
    }
    bare = make("Leave: {{ archive_url }}", layout=Layout(name="b", html="<b>{{ content }}</b>"))
    assert rendering.render(bare, contact()).links_used == {"archive_url"}


def _slow(prepared: rendering.Prepared) -> rendering.Prepared:
    return rendering.Prepared(**{**prepared.__dict__, "inlined": None})


@pytest.mark.parametrize(
    "body",
    [
        "# Hi {{ contact.first_name }}\n\nText with [a link](https://x.example/?a=1&b=2).",
        "{% for i in range(3) %}\n\n- item {{ i }}\n\n{% endfor %}",
        "{% if contact.attributes.vip %}**VIP** {{ contact.name }}{% else %}Hello{% endif %}",
        "| a | b |\n|---|---|\n| {{ contact.email }} | {{ contact.attributes.city }} |",
        "<p>O'Brien & Sons <b>{{ contact.name }}</b></p>",
    ],
)
def test_the_pre_inlined_template_renders_what_inlining_each_message_would(body):
    c = make(body, preheader="Teaser {{ contact.first_name }}")
    prepared = rendering.prepare(c)
    assert prepared.inlined is not None
    for person in (
        contact(),
        contact(name="", attributes={"vip": True, "city": "Gh<e>nt"}),
        contact(name='Zoë "Q" O\'Brien & <Co>'),
    ):
        context = {
            "contact": rendering.contact_context(person),
            "campaign": rendering.campaign_context(c),
        } | rendering.DEFAULT_LINKS
        fast, slow = prepared.render(context), _slow(prepared).render(context)
        # The same document for an HTML parser (entities may be written differently).
        assert rendering._same_html(fast.html, slow.html)
        assert fast.text == slow.text


@pytest.mark.parametrize(
    "layout_html",
    [
        # A loop between table rows: an HTML parser moves text out of tables.
        "<table>{% for i in range(2) %}<tr><td>{{ i }}</td></tr>{% endfor %}</table>{{ content }}",
        # A template tag inside the CSS, and between attributes.
        "<style>p { color: {{ '#123456' }}; }</style>{{ content }}",
        '<div {% if contact.name %}class="named"{% endif %}>{{ content }}</div>',
        # The content placed twice.
        "{{ content }}<hr>{{ content }}",
    ],
)
def test_layouts_inlining_cannot_keep_are_inlined_per_message(layout_html):
    c = make("Hello **{{ contact.first_name }}**", layout=Layout(name="x", html=layout_html))
    prepared = rendering.prepare(c)
    assert prepared.inlined is None
    html = rendering.render(c, contact()).html
    assert "Hello <strong>Bob</strong>" in html
    if "range(2)" in layout_html:
        assert html.count("<tr>") == 2 and "<td>1</td>" in html
    if "#123456" in layout_html:
        assert 'style="color: #123456;"' in html
