"""Deliverability: a typical campaign in the default layout, as a whole RFC 5322
message, scores low with SpamAssassin's rules (Debian's `spamassassin`, local tests
only: no DNS, no network). `./dev test` installs SpamAssassin when it is missing."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from pathlib import Path

import pytest

from tidings.audience.models import Contact
from tidings.campaigns import rendering
from tidings.campaigns.models import Campaign

pytestmark = pytest.mark.slow

# The default layout must stay well under SpamAssassin's spam threshold of 5.
LIMIT = 2.0

TYPICAL_BODY = """# Hello {{ contact.first_name | default("there") }},

November was busy at the bakery in {{ contact.attributes.city | default("town") }}.
Here is what changed.

## New rye bread

Our baker Marta spent the autumn on a sourdough rye with caraway. It is on the shelves
from Tuesday, and we would love to hear what you think of it.

## Longer opening hours

From 1 December we open at 7:00 on weekdays, so you can pick up breakfast on the way
to work.

## A workshop for children

On Saturday 14 December children can shape and bake their own rolls. Places are
limited; [read more on our website](https://acme-bakery.example/workshop).

Thank you for being with us,

Marta and the team
"""


@dataclass
class Score:
    points: float
    rules: list[str]
    report: str


def spamassassin(message: bytes, prefs: Path) -> Score:
    if shutil.which("spamassassin") is None:
        pytest.fail("spamassassin is missing: `apt-get install spamassassin` (./dev test does it)")
    result = subprocess.run(
        ["spamassassin", "-L", "-t", "-p", str(prefs)],
        input=message,
        capture_output=True,
        check=True,
        timeout=120,
    )
    out = result.stdout.decode(errors="replace")
    status = re.search(r"^X-Spam-Status: (.*?)\n(?!\s)", out, re.M | re.S)
    assert status, out
    header = " ".join(status.group(1).split())
    points = float(re.search(r"score=(-?\d+(?:\.\d+)?)", header).group(1))  # type: ignore[union-attr]
    tests = re.search(r"tests=(\S+)", header)
    rules = tests.group(1).split(",") if tests and tests.group(1) != "none" else []
    table = out[out.find("Content analysis details") :]
    return Score(points, rules, table)


def campaign_message(campaign: Campaign, contact: Contact) -> bytes:
    """The whole message as the sending engine sends it."""
    unsubscribe = "https://mail.acme-bakery.example/u/3f9a8c2e0b7d41c6"
    rendered = rendering.render(
        campaign,
        contact,
        links={
            "unsubscribe_url": unsubscribe,
            "preferences_url": "https://mail.acme-bakery.example/p/3f9a8c2e0b7d41c6",
        },
    )
    message = EmailMessage()
    message["From"] = formataddr((campaign.from_name, campaign.from_email))
    message["To"] = formataddr((contact.name, contact.email))
    message["Subject"] = rendered.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain="acme-bakery.example")
    message["List-Unsubscribe"] = f"<{unsubscribe}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message.as_bytes()


def typical_campaign() -> Campaign:
    return Campaign(
        name="November news",
        subject='{{ contact.first_name | default("Hello") }}, our November news',
        preheader="A new rye bread, longer hours and a workshop for children",
        from_name="Acme Bakery",
        from_email="news@acme-bakery.example",
        content_format=Campaign.Format.MARKDOWN,
        body=TYPICAL_BODY,
    )


def test_the_default_layout_scores_low_with_spamassassin(tmp_path):
    contact = Contact(email="bob@example.org", name="Bob Stone", attributes={"city": "Ghent"})
    data = campaign_message(typical_campaign(), contact)
    assert b"multipart/alternative" in data and b"Message-ID: <" in data
    score = spamassassin(data, tmp_path / "user_prefs")
    print(f"SpamAssassin score of the default layout: {score.points}")
    print(score.report)
    assert score.points < LIMIT, f"{score.points} >= {LIMIT}: {score.rules}"


def test_spamassassin_does_flag_spam_so_the_low_score_means_something(tmp_path):
    spam = EmailMessage()
    spam["From"] = "x@example.org"
    spam["To"] = "bob@example.org"
    spam["Subject"] = "test"
    spam.set_content("XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\n")
    score = spamassassin(spam.as_bytes(), tmp_path / "user_prefs")
    assert score.points >= 5 and "GTUBE" in score.rules
