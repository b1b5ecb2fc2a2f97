"""Satisfaction: solving mails a signed single-use link; ratings per agent and queue."""

from __future__ import annotations

import re

import pytest

from tidings.accounts.models import Account
from tidings.desk import ratings, services
from tidings.desk.models import Conversation, Rating


def solved(customer, staff) -> Conversation:  # type: ignore[no-untyped-def]
    conversation = services.open_conversation(user=customer, subject="Help", body="Please")
    services.reply(conversation, by=staff, body="Done.")
    services.set_status(conversation, status=Conversation.Status.SOLVED, by=staff)
    return conversation


def link_in(mail) -> str:  # type: ignore[no-untyped-def]
    found = re.search(r"https?://\S+/support/rate/\S+/", mail.body)
    assert found, mail.body
    return "/" + found[0].split("://", 1)[1].split("/", 1)[1]  # the path


def test_solving_mails_a_link_that_rates_once(client, customer, staff, mailbox):
    conversation = solved(customer, staff)
    mail = next(m for m in mailbox if "How did we do?" in m.subject)
    assert mail["Auto-Submitted"] == "auto-generated"
    url = link_in(mail)
    assert client.get(url).status_code == 200  # showing records nothing (mail scanners)
    assert not Rating.objects.exists()
    assert client.post(url, {"score": 3, "comment": "Quick, thanks"}).status_code == 200
    rating = Rating.objects.get()
    assert (rating.conversation, rating.score, rating.agent, rating.comment) == (
        conversation,
        3,
        staff,
        "Quick, thanks",
    )
    # Used twice: refused, the first rating stands.
    assert client.post(url, {"score": 1}).status_code == 400
    assert Rating.objects.get().score == 3
    assert ratings.by_agent()[0].average == 3
    assert ratings.by_queue()[0].count == 1


def test_a_forged_or_bad_link_or_score_records_nothing(client, customer, staff, mailbox):
    conversation = solved(customer, staff)
    assert client.post("/support/rate/forged/", {"score": 3}).status_code == 400
    token = services.rating_token(conversation)
    assert client.post(f"/support/rate/{token}/", {"score": 9}).status_code == 400
    assert client.post(f"/support/rate/{token}/", {"score": "x"}).status_code == 400
    assert not Rating.objects.exists()


def test_no_survey_when_the_customer_switched_follow_ups_off(customer, staff, mailbox):
    customer.allow_support_followups = False
    customer.save()
    solved(customer, staff)
    assert not [m for m in mailbox if "How did we do?" in m.subject]


def test_the_staff_desk_shows_ratings_per_agent_and_queue(console, staff, customer, mailbox):
    conversation = solved(customer, staff)
    ratings.rate(services.rating_token(conversation), score=2)
    page = console(staff).get("/staff/desk/")
    assert "Satisfaction" in page.text and staff.name in page.text


@pytest.mark.promise("P18")
def test_no_survey_for_a_user_the_users_rule_does_not_let_us_mail(customer, staff, mailbox):
    conversation = services.open_conversation(user=customer, subject="Help", body="Please")
    services.reply(conversation, by=staff, body="Done.")
    account = customer.account
    account.status = Account.Status.CLOSED  # closed since: no service mail
    account.save()
    services.set_status(conversation, status=Conversation.Status.SOLVED, by=staff)
    assert not [m for m in mailbox if "How did we do?" in m.subject]
