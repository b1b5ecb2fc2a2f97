"""The automations' HTTP API: create with a trigger, add, insert, change and remove
steps, start, pause and resume, delete one that never ran, post events (idempotent by
id), the counts per step; another account's ids are a 404 and change nothing, bad input
a 422 with `detail`."""

from __future__ import annotations

from django.utils import timezone

from tidings.audience import services as audience
from tidings.audience.models import MailingList
from tidings.automations import engine
from tidings.automations.models import Automation, Step
from tidings.sending import services as sending

MESSAGE = {
    "kind": "send",
    "subject": "Welcome",
    "from_email": "news@news.example.org",
    "body": "<p>Hello {{ contact.name }}.</p>",
}


def test_an_event_automation_built_run_and_watched_through_the_api(api, customer, mailbox):
    sending.set_postal_address(customer.account, "12 Baker Lane, Brussels", by=customer)
    news = MailingList.objects.create(account=customer.account, name="News")
    made = api(
        "post",
        "/automations",
        {"name": "Paid", "list": str(news.uuid), "trigger": "event", "event_name": "order.paid"},
    )
    assert made.status_code == 201, made.content
    key = made.json()["uuid"]
    assert api("post", f"/automations/{key}/steps", MESSAGE).status_code == 201
    wait = api(
        "post",
        f"/automations/{key}/steps",
        {"kind": "wait", "wait_amount": 3, "wait_unit": "hours"},
    ).json()["steps"][1]
    first = api("get", f"/automations/{key}").json()["steps"][0]
    inserted = api(
        "post",
        f"/automations/{key}/steps",
        {"kind": "add_tag", "tag": "buyer", "before": first["id"]},
    )
    assert [s["kind"] for s in inserted.json()["steps"]] == ["add_tag", "send", "wait"]
    changed = api("patch", f"/automations/{key}/steps/{wait['id']}", {"wait_amount": 5})
    assert changed.json()["steps"][2]["wait_amount"] == 5
    assert api("post", f"/automations/{key}/start").json()["status"] == "active"
    ada = audience.add_contact(customer.account, "ada@example.net", name="Ada", lists=[news])
    event = {"id": "order-1", "email": "ada@example.net"}
    assert api("post", f"/automations/{key}/events", event).json() == {
        "accepted": True,
        "automations": 1,
    }
    assert api("post", f"/automations/{key}/events", event).json()["accepted"] is False
    named = {"id": "order-2", "contact": str(ada.uuid), "name": "order.paid"}
    assert api("post", "/automations/events", named).status_code == 202
    engine.run(timezone.now())
    assert [m.subject for m in mailbox] == ["Welcome"]
    body = api("get", f"/automations/{key}").json()
    assert [(s["waiting"], s["passed"]) for s in body["steps"]] == [(0, 1), (0, 1), (1, 0)]
    assert body["counts"]["entered"] == 1
    assert api("post", f"/automations/{key}/pause").json()["status"] == "paused"
    assert api("post", f"/automations/{key}/resume").json()["status"] == "active"
    removed = api("delete", f"/automations/{key}/steps/{wait['id']}")
    assert removed.status_code == 200 and len(removed.json()["steps"]) == 2
    listed = api("get", "/automations").json()["items"]
    assert [a["uuid"] for a in listed] == [key]


def test_another_accounts_ids_are_not_found_and_nothing_changes(api, other_api, customer):
    news = MailingList.objects.create(account=customer.account, name="News")
    key = api("post", "/automations", {"name": "Mine", "list": str(news.uuid)}).json()["uuid"]
    step = api("post", f"/automations/{key}/steps", {"kind": "leave"}).json()["steps"][0]["id"]
    for method, path, body in [
        ("get", f"/automations/{key}", None),
        ("patch", f"/automations/{key}", {"trigger": "joined_list", "name": "Theirs"}),
        ("post", f"/automations/{key}/steps", {"kind": "leave"}),
        ("patch", f"/automations/{key}/steps/{step}", {"tag": "x"}),
        ("delete", f"/automations/{key}/steps/{step}", None),
        ("delete", f"/automations/{key}", None),
        ("post", f"/automations/{key}/start", None),
        ("post", f"/automations/{key}/events", {"id": "e", "email": "a@example.net"}),
    ]:
        answer = other_api(method, path, body)
        assert answer.status_code == 404, (path, answer.content)
    theirs = other_api("post", "/automations", {"name": "X", "list": str(news.uuid)})
    assert theirs.status_code == 404
    automation = Automation.objects.get()
    assert automation.name == "Mine" and automation.status == "draft"
    assert Step.objects.count() == 1


def test_bad_input_is_a_422_with_detail_and_changes_nothing(api, customer):
    news = MailingList.objects.create(account=customer.account, name="News")
    bad = api("post", "/automations", {"name": "T", "list": str(news.uuid), "trigger": "tag_added"})
    assert bad.status_code == 422 and "tag" in bad.json()["detail"]
    key = api("post", "/automations", {"name": "Mine", "list": str(news.uuid)}).json()["uuid"]
    for body in [
        {"kind": "wait", "wait_amount": 0, "wait_unit": "days"},
        {"kind": "wait", "wait_weekday": 7},
        {"kind": "condition", "test": "equals"},
        {"kind": "add_tag"},
        {"kind": "teleport"},
        {"kind": "send", "subject": "Hi", "body": "Hello."},  # no From address: not a 500
    ]:
        answer = api("post", f"/automations/{key}/steps", body)
        assert answer.status_code == 422, (body, answer.content)
        assert answer.json()["detail"]
    assert api("post", f"/automations/{key}/start").status_code == 422  # no step
    assert api("post", f"/automations/{key}/resume").status_code == 422
    missing = api("post", f"/automations/{key}/steps", {"kind": "leave", "before": 999999})
    assert missing.status_code == 404
    assert Automation.objects.count() == 1 and not Step.objects.exists()


def test_a_conditions_outcomes_are_counted_in_the_api_as_on_its_page(api, customer):
    """A condition says how often it was met and not met (the page's "N met · M did
    not"); the other steps say null."""
    news = MailingList.objects.create(account=customer.account, name="News")
    key = api("post", "/automations", {"name": "Plans", "list": str(news.uuid)}).json()["uuid"]
    api("post", f"/automations/{key}/steps", {"kind": "add_tag", "tag": "seen"})
    condition = {"kind": "condition", "test": "equals", "key": "plan", "value": "pro"}
    assert api("post", f"/automations/{key}/steps", condition).status_code == 201
    assert api("post", f"/automations/{key}/start").status_code == 200
    for n, plan in enumerate(["pro", "free", "pro"]):
        audience.add_contact(
            customer.account, f"r{n}@example.net", attributes={"plan": plan}, lists=[news]
        )
    engine.run(timezone.now())
    steps = api("get", f"/automations/{key}").json()["steps"]
    assert [(s["passed"], s["met"], s["not_met"]) for s in steps] == [(3, None, None), (3, 2, 1)]


def test_an_automation_that_never_ran_is_deleted_one_that_ran_is_refused(api, customer):
    sending.set_postal_address(customer.account, "12 Baker Lane, Brussels", by=customer)
    news = MailingList.objects.create(account=customer.account, name="News")
    keys = []
    for name in ("Draft", "Ran"):
        key = api("post", "/automations", {"name": name, "list": str(news.uuid)}).json()["uuid"]
        assert api("post", f"/automations/{key}/steps", MESSAGE).status_code == 201
        keys.append(key)
    draft, ran = keys
    assert api("post", f"/automations/{ran}/start").status_code == 200
    assert api("post", f"/automations/{ran}/pause").status_code == 200

    assert api("delete", f"/automations/{draft}").status_code == 204
    assert api("get", f"/automations/{draft}").status_code == 404
    refused = api("delete", f"/automations/{ran}")
    assert refused.status_code == 422
    assert "This automation has run" in refused.json()["detail"]
    assert list(Automation.objects.values_list("name", flat=True)) == ["Ran"]
    assert Step.objects.count() == 1
