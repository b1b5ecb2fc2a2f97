"""The desk's forms. The public one carries a first-party anti-bot check: a honeypot
field people never see, and a signed timestamp of when the form was shown (a post
faster than a person types, or from a form shown days ago, is refused)."""

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
        """The honeypot filled, or the form posted too fast, too late or not as shown."""
        if self.data.get("website"):
            return True
        try:
            shown = int(signing.loads(str(self.data.get("shown", "")), salt=SALT))
        except (signing.BadSignature, TypeError, ValueError):
            return True
        age = time.time() - shown
        return not (settings.DESK["form_min_seconds"] <= age <= settings.DESK["form_max_seconds"])


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
