"""Sending Tidings's own mail (confirmations, notices) from templates, after commit."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string


def send_templated(template: str, to: list[str], context: dict[str, Any]) -> None:
    """Queue a mail rendered from `<template>_subject.txt` and `<template>.txt`.

    It is queued when the surrounding transaction commits, so a rolled-back change never
    announces itself.
    """
    from tidings.core.tasks import deliver_mail

    context = {**context, "operator": settings.OPERATOR, "base_url": settings.BASE_URL}
    subject = " ".join(render_to_string(f"{template}_subject.txt", context).split())
    body = render_to_string(f"{template}.txt", context)
    transaction.on_commit(lambda: deliver_mail.delay(subject=subject, body=body, to=to))


def deliver_now(subject: str, body: str, to: list[str]) -> None:
    message = EmailMultiAlternatives(subject=subject, body=body, to=to)
    message.send()
