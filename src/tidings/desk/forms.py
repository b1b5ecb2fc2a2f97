"""The desk's forms. The public one carries a first-party anti-bot check: a honeypot
field people never see, and a signed timestamp of when the form was shown. A filled
honeypot or a forged timestamp is a bot's, told the same as a person and stored nothing;
a post faster than a person types, or from a form shown a day ago, may be a person's
(a message pasted and sent at once, a tab left open): it is shown again with what they
wrote and a word of why, never silently dropped."""

from __future__ import annotations

import time

from django import forms
from django.conf import settings
from django.core import signing
from django.utils.translation import gettext_lazy as _

SALT = "tidings.desk.contact-form"


class ConversationForm(forms.Form):
    subject = forms.CharField(label=_("Subject"), max_length=200)
    body = forms.CharField(label=_("Message"), max_length=50_000, widget=forms.Textarea)
    attachment = forms.FileField(
        label=_("Attachment (optional)"),
        required=False,
        help_text=_("A PDF, an image (PNG, JPEG, GIF, WebP) or a text file."),
    )


class ReplyForm(forms.Form):
    body = forms.CharField(label=_("Message"), max_length=50_000, widget=forms.Textarea)


def shown_at_token() -> str:
    return signing.dumps(int(time.time()), salt=SALT)


class ContactForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200, required=False)
    email = forms.EmailField(label=_("Email"), max_length=254)
    subject = forms.CharField(label=_("Subject"), max_length=200)
    body = forms.CharField(label=_("Message"), max_length=50_000, widget=forms.Textarea)
    # The honeypot: hidden from people, filled by bots.
    website = forms.CharField(required=False)
    shown = forms.CharField(widget=forms.HiddenInput)

    def is_bot(self) -> bool:
        """The honeypot filled, or the form not as it was shown (a forged timestamp)."""
        if self.data.get("website"):
            return True
        try:
            int(signing.loads(str(self.data.get("shown", "")), salt=SALT))
        except (signing.BadSignature, TypeError, ValueError):
            return True
        return False

    def timing_error(self) -> str | None:
        """Why a post by a person, maybe, is asked again: sent faster than anyone types,
        or from a form shown too long ago. None when its timing is a person's."""
        try:
            shown = int(signing.loads(str(self.data.get("shown", "")), salt=SALT))
        except (signing.BadSignature, TypeError, ValueError):
            return None  # is_bot's
        age = time.time() - shown
        if age < settings.DESK["form_min_seconds"]:
            return str(_("That was quick: please check your message and send it again."))
        if age > settings.DESK["form_max_seconds"]:
            return str(_("This page was open a long time: please send your message again."))
        return None

    def ask_again(self, error: str) -> None:
        """Shown again with what was written, a fresh timestamp and the reason."""
        self.data = {**self.data.dict(), "shown": shown_at_token()}  # type: ignore[attr-defined]
        self.add_error(None, error)


class ChatForm(ContactForm):
    """A visitor opens a chat from the contact page: the contact form's fields and its
    anti-bot check, without a subject (the first message says it)."""

    subject = None  # type: ignore[assignment]
    body = forms.CharField(
        label=_("Your message"),
        max_length=settings.DESK["chat_message_max_chars"],
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class CustomerChatForm(forms.Form):
    body = forms.CharField(
        label=_("Your message"),
        max_length=settings.DESK["chat_message_max_chars"],
        widget=forms.Textarea(attrs={"rows": 3}),
    )
