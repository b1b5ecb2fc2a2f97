"""Mail to contacts is in the account's language (My Account), whatever the language of
the page or the browser that caused it."""

from __future__ import annotations

from tests.audience.test_signup import UA
from tidings.accounts.models import Account


def submit(client, form, lists, language):  # type: ignore[no-untyped-def]
    payload = {"email": "new@example.org", "name": "New Reader", "consent": "yes", "l": lists}
    return client.post(
        f"/subscribe/{form.uuid}/",
        payload,
        HTTP_USER_AGENT=UA,
        REMOTE_ADDR="203.0.113.7",
        HTTP_ACCEPT_LANGUAGE=language,
    )


def test_a_contact_gets_the_confirmation_in_the_accounts_language(
    client, smtp_mail, signup_form, newsletter
):
    Account.objects.filter(pk=signup_form.account_id).update(language="fr")
    submit(client, signup_form, [newsletter.uuid], "en")
    (mail,) = smtp_mail.to("new@example.org")
    assert mail["Subject"].startswith("Veuillez confirmer votre inscription à")
    body = mail.get_body(preferencelist=("plain",)).get_content()
    assert "Pour confirmer, ouvrez ce lien" in body
    assert "I agree to receive the newsletter by email." in body  # the customer's own text


def test_an_english_account_mails_in_english_from_a_french_page(
    client, smtp_mail, signup_form, newsletter
):
    page = submit(client, signup_form, [newsletter.uuid], "fr")
    assert "Merci" in page.content.decode()  # the visitor reads the page in French
    (mail,) = smtp_mail.to("new@example.org")
    assert mail["Subject"].startswith("Please confirm your subscription to")
