"""The live chat's pages: "Chat with us" on the contact page and the support page, the
ticket form offered when no agent is online, a chat opened by a visitor (the contact
form's anti-bot check and rate) or a customer, its room reached only by its token."""

from __future__ import annotations

import pytest

from tests.factories import StaffFactory
from tests.staff.conftest import REASON
from tidings.accounts.models import User
from tidings.desk import chat
from tidings.desk.forms import shown_at_token
from tidings.desk.models import Channel, Conversation
from tidings.privacy.models import CollectionRecord


@pytest.fixture
def fast_form(settings) -> None:  # type: ignore[no-untyped-def]
    settings.DESK = {**settings.DESK, "form_min_seconds": 0}


@pytest.fixture
def agent_online(db, staff) -> None:  # type: ignore[no-untyped-def]
    chat.agent_seen(staff)


def test_the_contact_page_links_to_the_chat_and_loads_nothing_of_it(client, db):
    page = client.get("/contact/").text
    assert 'href="/chat/"' in page
    assert "chat.js" not in page and "/ws/" not in page


def test_with_no_agent_online_the_ticket_form_is_offered(client, db):
    page = client.get("/chat/")
    assert page.status_code == 200
    assert "/contact/#write-to-us" in page.text and "chat.js" not in page.text


def test_a_visitor_opens_a_chat_and_its_room_is_theirs_by_token(client, agent_online, fast_form):
    form = client.get("/chat/")
    assert 'name="email"' in form.text and not client.cookies
    response = client.post(
        "/chat/",
        {"name": "Vi", "email": "Vi@Example.net", "body": "Hello", "shown": shown_at_token()},
    )
    assert response.status_code == 302
    conversation = Conversation.objects.get()
    assert conversation.channel == Channel.CHAT and conversation.email == "vi@example.net"
    assert conversation.user is None and conversation.status == Conversation.Status.NEW
    # The room's address is the signed token, never the conversation's number.
    assert response["Location"] == f"/chat/{chat.token_for(conversation)}/"
    room = client.get(response["Location"])
    assert "Hello" in room.text and "desk/chat.js" in room.text
    assert client.get(f"/chat/{conversation.pk}/").status_code == 404


@pytest.mark.promise("P2")
def test_a_chat_records_its_point_of_collection_and_sends_no_acknowledgement(
    client, agent_online, fast_form, mailoutbox, on_commit_runs
):
    client.post(
        "/chat/",
        {"name": "Vi", "email": "vi@example.net", "body": "Hello", "shown": shown_at_token()},
    )
    records = CollectionRecord.objects.filter(point="support request (chat)")
    assert {what for r in records for what in r.data_collected} == {"email", "name", "message"}
    assert {r.legal_basis for r in records} == {"contract"}
    # Answered live: no "we have your request" mail (a transcript only on request).
    assert mailoutbox == []


def test_a_bot_gets_no_chat(client, agent_online, fast_form):
    client.post(
        "/chat/",
        {"email": "b@example.net", "body": "spam", "website": "x", "shown": shown_at_token()},
    )
    assert not Conversation.objects.exists()


def test_a_visitor_too_quick_for_the_anti_bot_check_is_asked_again_not_told_no_one_is_online(
    client, agent_online
):
    """The form is sent within the anti-bot check's seconds (a message pasted and sent at
    once): the chat form again, with what was written and why, not the offline page."""
    data = {"email": "vera@example.net", "body": "Are you there?", "shown": shown_at_token()}
    response = client.post("/chat/", data)
    assert response.status_code == 400
    assert "That was quick" in response.text and "Are you there?" in response.text
    assert "/contact/#write-to-us" not in response.text
    assert not Conversation.objects.exists()


def test_a_customer_chats_from_the_support_page(client, customer, other_customer, agent_online):
    client.force_login(customer)
    assert 'href="/support/chat/"' in client.get("/support/").text
    response = client.post("/support/chat/", {"body": "About my invoice"})
    assert response.status_code == 302
    conversation = Conversation.objects.get()
    assert conversation.user == customer and conversation.account == customer.account
    assert client.get(response["Location"]).status_code == 200
    client.force_login(other_customer)
    assert client.get(response["Location"]).status_code == 404


def test_the_desk_shows_waiting_chats_and_a_chat_with_its_live_panel_and_history(
    console, staff, customer, agent_online
):
    earlier = chat.start(body="Old question", user=customer)
    chat.end(earlier)
    waiting = chat.start(body="New question", user=customer)
    client = console(staff, reason=REASON)
    queue = client.get("/staff/desk/").text
    assert 'id="chat-queue"' in queue and f"/staff/desk/{waiting.pk}/" in queue
    page = client.get(f"/staff/desk/{waiting.pk}/").text
    assert "desk/chat.js" in page and f"/ws/desk/agent/{waiting.pk}/" in page
    # The customer's other conversations, as for mail (P6).
    assert f"/staff/desk/{earlier.pk}/" in page


def test_each_agent_is_online_on_their_own_and_leaves_on_their_own(db, staff):
    other = StaffFactory(email="agent-two@operator.example", staff_role=User.StaffRole.SUPPORT)
    chat.agent_seen(staff)
    chat.agent_seen(other)
    assert chat.agents_online() == 2
    chat.agent_left(staff)
    assert chat.agents_online() == 1
