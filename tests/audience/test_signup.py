"""Subscription forms: the hosted page, double opt-in through a real SMTP server, proof
of consent, bots, rate limits, and never telling who is on a list."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from tests.audience.conftest import link_in, path_of
from tidings.accounts import services as accounts
from tidings.audience import mailability, mailing_lists, services, signup
from tidings.audience.models import ConsentProof, Contact, Subscription, SubscriptionForm
from tidings.audience.services import AudienceError
from tidings.core import retention

UA = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"


def submit(client, form, **data):  # type: ignore[no-untyped-def]
    payload = {"email": "new@example.org", "name": "New Reader", "consent": "yes"} | data
    return client.post(
        f"/subscribe/{form.uuid}/", payload, HTTP_USER_AGENT=UA, REMOTE_ADDR="203.0.113.7"
    )


def test_the_hosted_form_shows_the_forms_public_lists_and_consent(client, signup_form):
    page = client.get(f"/subscribe/{signup_form.uuid}/").content.decode()
    assert "Newsletter" in page and "Offers" in page and "Once a month" in page
    assert "I agree to receive the newsletter by email." in page
    assert signup_form.account.name in page
    assert 'name="website"' in page  # the honeypot


@pytest.mark.promise("P2")
@pytest.mark.promise("P22")
def test_double_opt_in_mails_a_link_and_subscribes_only_after_confirming(
    client, smtp_mail, signup_form, newsletter
):
    response = submit(client, signup_form, l=[newsletter.uuid])
    assert response.status_code == 200
    assert "check your mailbox" in response.content.decode()
    contact = Contact.objects.get(email="new@example.org")
    assert contact.status == Contact.Status.UNCONFIRMED
    assert Subscription.objects.get(contact=contact).status == "unconfirmed"
    assert not mailability.recipients(contact.account, [newsletter.pk]).exists()
    proof = ConsentProof.objects.get(contact=contact)
    assert proof.consent_text == "I agree to receive the newsletter by email."
    assert proof.consent_version == "1" and proof.form == signup_form
    assert proof.ip_address == "203.0.113.7" and proof.user_agent == UA
    assert proof.double_optin and proof.confirmed_at is None

    (mail,) = smtp_mail.to("new@example.org")
    assert (
        mail["From"].addresses[0].display_name == f"{signup_form.account.name} via Example Mail Ltd"
    )
    assert "Newsletter" in mail["Subject"]
    body = mail.get_body(preferencelist=("plain",)).get_content()
    assert "I agree to receive the newsletter by email." in body
    path = path_of(link_in(mail, "/subscribe/confirm/"))

    # Opening the link (a mail scanner does) changes nothing; pressing the button does.
    assert "Yes, subscribe me" in client.get(path).content.decode()
    assert Subscription.objects.get(contact=contact).status == "unconfirmed"
    page = client.post(path)
    assert "You are subscribed" in page.content.decode()
    contact.refresh_from_db()
    assert contact.status == Contact.Status.ACTIVE
    assert Subscription.objects.get(contact=contact).status == "confirmed"
    proof.refresh_from_db()
    assert proof.confirmed_at is not None
    assert list(mailability.recipients(contact.account, [newsletter.pk])) == [contact]


def test_single_opt_in_subscribes_at_once(client, mailbox, signup_form, offers):
    response = submit(client, signup_form, l=[offers.uuid])
    assert "Thank you" in response.content.decode()
    contact = Contact.objects.get(email="new@example.org")
    assert contact.status == "active"
    assert list(mailability.recipients(contact.account, [offers.pk])) == [contact]
    proof = ConsentProof.objects.get(contact=contact)
    assert not proof.double_optin and proof.consent_text
    assert mailbox == []


def test_the_snippet_posts_to_the_hosted_form_without_a_csrf_token(logged_in, signup_form, mailbox):
    page = logged_in.get(f"/forms/{signup_form.uuid}/").content.decode()
    assert f"/subscribe/{signup_form.uuid}/" in page and "&lt;form method=&quot;post&quot;" in page
    from django.test import Client

    outside = Client(enforce_csrf_checks=True)
    response = submit(outside, signup_form, l=[str(signup_form.lists.first().uuid)])
    assert response.status_code == 200


def test_a_thank_you_address_of_the_customer_is_followed(client, account, offers, mailbox):
    form = mailing_lists.save_form(
        account,
        name="Shop",
        lists=[offers],
        consent_text="Yes",
        thank_you_url="https://shop.example/thanks",
    )
    response = submit(client, form)
    assert response.status_code == 302 and response["Location"] == "https://shop.example/thanks"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"email": "not-an-address"}, "not a valid email address"),
        ({"email": "a@b"}, "not a valid email address"),
        ({"consent": ""}, "Tick the box to agree"),
        ({"l": []}, "Choose at least one list"),
    ],
)
def test_bad_input_on_the_form_is_explained_and_nothing_is_stored(
    client, signup_form, mailbox, data, message
):
    response = submit(client, signup_form, **data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Contact.objects.exists() and mailbox == []


def test_a_list_that_is_not_on_the_form_is_ignored(client, account, signup_form, other_customer):
    private = mailing_lists.save_list(account, name="Staff only")
    theirs = mailing_lists.save_list(other_customer.account, name="Theirs", visibility="public")
    response = submit(client, signup_form, l=[private.uuid, theirs.uuid])
    assert response.status_code == 400
    assert not Contact.objects.exists()


def test_the_honeypot_pretends_success_and_stores_nothing(client, signup_form, mailbox):
    response = submit(client, signup_form, website="http://spam.example")
    assert response.status_code == 200
    assert "check your mailbox" in response.content.decode()
    assert not Contact.objects.exists() and not ConsentProof.objects.exists()
    assert mailbox == []


def test_sign_ups_are_limited_per_ip_address(client, signup_form, offers, settings, mailbox):
    settings.SIGNUP = settings.SIGNUP | {"per_ip_hour": 3}
    for i in range(3):
        assert (
            submit(client, signup_form, email=f"r{i}@example.org", l=[offers.uuid]).status_code
            == 200
        )
    response = submit(client, signup_form, email="r9@example.org", l=[offers.uuid])
    assert response.status_code == 429
    assert "try again" in response.content.decode()
    assert not Contact.objects.filter(email="r9@example.org").exists()
    # Another address of another network is not held back by it.
    other = client.post(
        f"/subscribe/{signup_form.uuid}/",
        {"email": "x@example.org", "consent": "yes", "l": [offers.uuid]},
        REMOTE_ADDR="198.51.100.1",
    )
    assert other.status_code == 200


def test_sign_ups_are_limited_per_list(client, signup_form, offers, newsletter, settings, mailbox):
    settings.SIGNUP = settings.SIGNUP | {"per_list_hour": 2, "per_ip_hour": 100}
    for i in range(2):
        submit(
            client,
            signup_form,
            email=f"r{i}@example.org",
            l=[offers.uuid],
            REMOTE_ADDR=f"10.0.0.{i}",
        )
    blocked = submit(client, signup_form, email="r5@example.org", l=[offers.uuid])
    assert blocked.status_code == 429
    assert (
        submit(client, signup_form, email="r6@example.org", l=[newsletter.uuid]).status_code == 200
    )


def test_the_ip_address_is_not_kept_in_clear_in_the_cache(client, signup_form, offers, mailbox):
    import redis
    from django.conf import settings as django_settings

    submit(client, signup_form, l=[offers.uuid])
    keys = redis.Redis.from_url(django_settings.REDIS_URL).keys("*")
    assert keys and not any(b"203.0.113.7" in k for k in keys)


def test_a_known_address_gets_the_same_page_and_the_same_kind_of_mail(
    client, smtp_mail, account, signup_form, newsletter
):
    """The form never tells a stranger whether an address is on a list."""
    services.add_contact(account, "known@example.org", lists=[newsletter])
    known = submit(client, signup_form, email="known@example.org", l=[newsletter.uuid])
    unknown = submit(client, signup_form, email="stranger@example.org", l=[newsletter.uuid])
    assert known.status_code == unknown.status_code == 200

    def normalise(response):  # type: ignore[no-untyped-def]
        return response.content.decode().replace("csrfmiddlewaretoken", "")

    assert normalise(known) == normalise(unknown)
    (to_known,) = smtp_mail.to("known@example.org")
    (to_stranger,) = smtp_mail.to("stranger@example.org")
    assert to_known["Subject"] == to_stranger["Subject"]
    assert "/subscribe/confirm/" in to_known.get_body().get_content()
    # The known contact's confirmed subscription stays as it was.
    assert Subscription.objects.get(contact__email="known@example.org").status == "confirmed"


def test_confirmation_mails_to_one_address_are_limited(
    client, signup_form, newsletter, mailbox, settings
):
    settings.SIGNUP = settings.SIGNUP | {"mails_per_address_day": 2, "per_ip_hour": 100}
    for _ in range(4):
        assert (
            submit(client, signup_form, email="victim@example.org", l=[newsletter.uuid]).status_code
            == 200
        )
    assert len([m for m in mailbox if "victim@example.org" in m.to]) == 2


@pytest.mark.promise("P21")
def test_an_unsubscribed_address_comes_back_only_by_a_confirmed_double_opt_in(
    client, smtp_mail, account, signup_form, offers
):
    contact = services.add_contact(account, "left@example.org", lists=[offers])
    services.unsubscribe(contact)
    # Offers is single opt-in, but someone who left must prove a new consent.
    response = submit(client, signup_form, email="left@example.org", l=[offers.uuid])
    assert "Thank you" in response.content.decode()
    contact.refresh_from_db()
    assert contact.status == "unsubscribed"
    assert Subscription.objects.get(contact=contact).status == "unsubscribed"
    (mail,) = smtp_mail.to("left@example.org")
    client.post(path_of(link_in(mail, "/subscribe/confirm/")))
    contact.refresh_from_db()
    assert contact.status == "active"
    assert Subscription.objects.get(contact=contact).status == "confirmed"


@pytest.mark.promise("P13")
def test_an_erased_address_comes_back_only_by_a_confirmed_double_opt_in(
    client, mailbox, account, signup_form, offers
):
    services.erase_contact(services.add_contact(account, "erased@example.org", lists=[offers]))
    submit(client, signup_form, email="erased@example.org", l=[offers.uuid])
    contact = Contact.objects.get(email="erased@example.org")
    assert contact.status == "unconfirmed"
    assert services.is_suppressed(account, "erased@example.org")
    assert not mailability.recipients(account, [offers.pk]).exists()
    opened = signup.confirm_signup(_token(mailbox[-1].body))
    assert opened.contact.status == "active"
    assert not services.is_suppressed(account, "erased@example.org")


def test_a_blocklisted_address_is_not_subscribed(client, account, signup_form, offers, mailbox):
    services.blocklist(services.add_contact(account, "blocked@example.org"))
    response = submit(client, signup_form, email="blocked@example.org", l=[offers.uuid])
    assert "Thank you" in response.content.decode()
    assert not Subscription.objects.exists() and mailbox == []


def test_a_changed_consent_text_is_a_new_version_and_proofs_keep_theirs(
    client, account, signup_form, offers, mailbox
):
    submit(client, signup_form, email="first@example.org", l=[offers.uuid])
    mailing_lists.save_form(
        account, form=signup_form, name="Website footer", lists=[offers], consent_text="New words."
    )
    signup_form.refresh_from_db()
    assert signup_form.consent_version == 2
    submit(client, signup_form, email="second@example.org", l=[offers.uuid])
    proofs = dict(ConsentProof.objects.values_list("contact__email", "consent_text"))
    assert proofs == {
        "first@example.org": "I agree to receive the newsletter by email.",
        "second@example.org": "New words.",
    }


def _token(body: str) -> str:
    return link_in(body, "/subscribe/confirm/").rstrip("/").rsplit("/", 1)[-1]


def test_a_tampered_or_expired_confirmation_link_changes_nothing(
    client, signup_form, newsletter, mailbox
):
    submit(client, signup_form, l=[newsletter.uuid])
    token = _token(mailbox[-1].body)
    tampered = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    response = client.post(f"/subscribe/confirm/{tampered}/")
    assert response.status_code == 400 and "not valid" in response.content.decode()
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        expired = client.post(f"/subscribe/confirm/{token}/")
    assert expired.status_code == 400 and "expired" in expired.content.decode()
    assert Contact.objects.get().status == "unconfirmed"


@pytest.mark.promise("P12")
def test_unconfirmed_signups_are_deleted_when_the_window_ends(
    client, account, signup_form, newsletter, mailbox
):
    known = services.add_contact(account, "known@example.org")
    submit(client, signup_form, email="pending@example.org", l=[newsletter.uuid])
    submit(client, signup_form, email="known@example.org", l=[newsletter.uuid])
    later = timezone.now() + timedelta(days=6)
    retention.apply_all(now=later)
    assert Contact.objects.filter(email="pending@example.org").exists()
    retention.apply_all(now=timezone.now() + timedelta(days=8))
    assert not Contact.objects.filter(email="pending@example.org").exists()
    # A known contact stays; only their unconfirmed request goes.
    assert Contact.objects.filter(pk=known.pk).exists()
    assert not Subscription.objects.filter(contact=known).exists()
    assert not ConsentProof.objects.filter(contact=known, double_optin=True).exists()


def test_the_form_of_a_closed_account_takes_no_more_signups(client, customer, signup_form):

    accounts.close_account(customer.account, by=customer)
    assert client.get(f"/subscribe/{signup_form.uuid}/").status_code == 404
    assert submit(client, signup_form).status_code == 404
    assert not Contact.objects.exists()


@pytest.mark.parametrize("suffix", ["", "delete/"])
def test_another_accounts_form_cannot_be_edited(logged_in, other_customer, suffix):
    theirs_list = mailing_lists.save_list(other_customer.account, name="L", visibility="public")
    theirs = mailing_lists.save_form(
        other_customer.account, name="Their form", lists=[theirs_list], consent_text="ok"
    )
    for method in ("get", "post"):
        response = getattr(logged_in, method)(f"/forms/{theirs.uuid}/{suffix}", {"name": "Mine"})
        assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.name == "Their form"


def test_a_form_is_created_from_the_page(logged_in, account, newsletter):
    private = mailing_lists.save_list(account, name="Private")
    response = logged_in.post(
        "/forms/new/",
        {"name": "Footer", "lists": [newsletter.pk, private.pk], "consent_text": "Yes please"},
    )
    assert response.status_code == 200  # the private list is not a choice
    response = logged_in.post(
        "/forms/new/", {"name": "Footer", "lists": [newsletter.pk], "consent_text": "Yes please"}
    )
    assert response.status_code == 302
    page = logged_in.get(response["Location"]).content.decode()
    assert "/subscribe/" in page and "Copy" in page


def test_a_bot_filling_the_honeypot_is_never_redirected_to_the_thank_you_address(
    client, account, offers, mailbox
):
    form = mailing_lists.save_form(
        account, name="Shop", lists=[offers], consent_text="Yes",
        thank_you_url="https://shop.example/thanks",
    )  # fmt: skip
    response = submit(client, form, website="http://spam.example")
    assert response.status_code == 200 and "Location" not in response
    assert not Contact.objects.exists()


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "http:///evil.example", "https://user@evil.example/",
     "https://evil.example\\@shop.example/", "https://shop.example/" + "x" * 500, "//evil.example"],
)  # fmt: skip
def test_a_thank_you_address_that_is_no_plain_web_address_is_refused_at_save(account, offers, url):
    with pytest.raises(AudienceError, match="thank-you address"):
        mailing_lists.save_form(
            account, name="Shop", lists=[offers], consent_text="Yes", thank_you_url=url
        )
    assert not SubscriptionForm.objects.exists()


def test_a_stored_thank_you_address_that_breaks_the_rule_is_not_followed(
    client, account, offers, mailbox
):
    form = mailing_lists.save_form(account, name="Shop", lists=[offers], consent_text="Yes")
    SubscriptionForm.objects.filter(pk=form.pk).update(thank_you_url="http:///evil.example")
    response = submit(client, form)
    assert response.status_code == 200 and "Location" not in response
