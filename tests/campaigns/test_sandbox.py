"""A customer's template can never read settings, files or other contacts, nor take a
worker down: it is refused when saved, and renders nothing harmful if it got through."""

from __future__ import annotations

import pytest
from django.conf import settings

from tidings.audience import services
from tidings.audience.models import Contact
from tidings.campaigns import rendering, sandbox
from tidings.campaigns.models import Campaign

ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ contact.__class__ }}{{ contact.__class__.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ self.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ config }}{{ config.SECRET_KEY }}",
    "{{ request }}{{ request.environ }}",
    "{{ settings.SECRET_KEY }}",
    "{% for x in ().__class__.__base__.__subclasses__() %}{{ x }}{% endfor %}",
    "{{ contact.attributes.__class__.__base__.__subclasses__() }}",
    "{{ (contact.email|attr('__class__')) }}",
    "{{ contact.email.format.__globals__ }}",
    "{{ '{0.__class__}'.format(contact.email) }}",
    "{{ contact.attributes.update(city='x') }}",
]


def contact() -> Contact:
    return Contact(email="bob@example.org", name="Bob Stone", attributes={"city": "Ghent"})


def campaign(body: str) -> Campaign:
    return Campaign(
        name="n", subject="s", from_email="a@b.example", content_format="html", body=body
    )


@pytest.mark.parametrize("source", ESCAPES)
def test_an_escape_is_refused_when_saved(source):
    found = rendering.problems(
        subject="s",
        preheader="",
        body=source,
        content_format="html",
        layout=rendering.default_layout_html(),
    )
    assert "body" in found


@pytest.mark.parametrize("source", ESCAPES)
def test_an_escape_that_got_through_renders_nothing_of_the_server(source):
    try:
        html = rendering.render(campaign(source), contact()).html
    except rendering.TemplateError:
        return
    for leak in ("subclasses", "<class", "module", "function", "os.", settings.SECRET_KEY):
        assert leak not in html
    assert "Environ" not in html and "SECRET" not in html


def test_a_template_sees_only_its_own_contact(customer):

    services.add_contact(customer.account, "other@example.org", name="Other Person")
    bob = services.add_contact(customer.account, "bob@example.org", name="Bob")
    c = campaign("{{ contact }}|{% for k in contact %}{{ k }},{% endfor %}")
    html = rendering.render(c, bob).html
    assert "other@example.org" not in html and "Other Person" not in html
    assert "email,name,first_name,last_name,attributes," in html


HUGE = [
    ("{{ range(10**9)|list|length }}", "range"),
    ("{% for i in range(10**9) %}x{% endfor %}", "range"),
    ("{% for i in range(10000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}", "work"),
    ("{% set s = 'x' * 1000 %}{% for a in s %}{% for b in s %}.{% endfor %}{% endfor %}", "work"),
    ("{{ 'x' * 10**9 }}", "grow"),
    ("{{ [0] * 10**9 }}", "grow"),
    ("{{ 2**1000000 }}", "grow"),
    ("{{ 'x'|center(10**9) }}", "grow"),
    ("{{ 'x\n'|indent(10**9) }}", "grow"),
    ("{{ 'x'.ljust(10**9) }}", "grow"),
    ("{{ '%0999999999d' % 1 }}", "format"),
    ("{{ '%*d' % (999999999, 1) }}", "format"),
    ("{{ '{:>999999999}'.format(1) }}", "format"),
    ("{{ '%0999999999d'|format(1) }}", "format"),
    ("{{ 'ab'|replace('', 'x' * 100000) }}", "grow"),
    ("{{ range(10000)|join('x' * 1000) }}", "grow"),
    ("{{ [1]|batch(10**9, 'x')|list }}", "grow"),
    ("{{ [1]|slice(10**9)|list }}", "grow"),
    ("{{ ('ab ' * 1000)|wordwrap(1, wrapstring='y' * 100000) }}", "grow"),
    ("{% set a = 'xxxxxxxxxx' %}" + "{% set a = a ~ a %}" * 40 + "{{ a }}", "grow"),
    (
        "{% set ns = namespace(s='xx') %}{% for i in range(60) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "grow",
    ),
    (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
        "{{ f(40) }}",
        "work",
    ),
    ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "deeply"),
    ("{% for i in range(10000) %}{{ 'x' * 150000 }}{% endfor %}", "output"),
]


@pytest.mark.parametrize(("source", "why"), HUGE)
def test_unbounded_work_is_refused_quickly(source, why):
    with pytest.raises(rendering.TemplateError) as refused:
        rendering.render(campaign(source), contact())
    message = str(refused.value)
    assert {"range": "range()", "work": "too much work", "grow": "grow", "format": "format",
            "deeply": "too deeply", "output": "output"}[why] in message  # fmt: skip


def test_reasonable_loops_and_strings_still_work():
    c = campaign(
        "{% for i in range(100) %}{{ i }},{% endfor %}{{ 'ab' * 3 }}{{ '%05d' % 42 }}"
        "{{ 'x'|center(9) }}{{ [1, 2]|join('-') }}{{ 2 ** 10 }}"
    )
    html = rendering.render(c, contact()).html
    assert "0,1,2," in html and "99," in html and "ababab" in html and "00042" in html
    assert "1-2" in html and "1024" in html


def test_templates_cannot_include_import_or_extend():
    for source in (
        "{% include '/etc/passwd' %}",
        "{% import 'x.html' as x %}",
        "{% from 'x' import y %}",
        "{% extends 'base.html' %}",
    ):
        with pytest.raises(rendering.TemplateError, match="cannot include"):
            rendering.check(source)


def test_an_oversized_template_is_refused():
    with pytest.raises(rendering.TemplateError, match="limited"):
        rendering.check("x" * (sandbox.MAX_SOURCE + 1))


def test_a_syntax_error_names_its_line():
    with pytest.raises(rendering.TemplateError, match="line 2"):
        rendering.check("fine\n{% if %}\n")


def test_an_unknown_filter_names_its_line():
    with pytest.raises(rendering.TemplateError, match="line 3: No filter named 'shout'"):
        rendering.check("a\nb\n{{ contact.name | shout }}")
