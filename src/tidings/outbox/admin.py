"""The local outbox viewer, for the operator's administrators (P7).

Mail lands here when no SMTP relay is configured. The messages are customers' personal
data, so reading them follows the console's rules: a stated reason, and an audit event
for every message listed or opened. A message shows its headers, its text part and its
HTML, the HTML in a sandboxed frame served with a policy of its own: no script runs,
and no remote image loads (a tracking pixel would tell its sender that staff read it).
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.views.decorators.clickjacking import xframe_options_sameorigin

from tidings.outbox.models import OutboxMessage
from tidings.staff import audit
from tidings.staff.admin_site import site
from tidings.staff.console import ReadOnlyAuditedAdmin

# The frame's own policy: nothing but the message's inline styles and embedded images.
HTML_CSP = (
    "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'"
)


def _parsed(message: OutboxMessage) -> EmailMessage:
    parsed = email.message_from_string(message.raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _part(message: OutboxMessage, kind: str) -> str | None:
    parsed = _parsed(message)
    if not parsed.keys():
        return None  # no message at all in `raw`
    part = parsed.get_body(preferencelist=(kind,))
    if part is None:
        return None
    content = part.get_content()
    return content if isinstance(content, str) else None


class OutboxMessageAdmin(ReadOnlyAuditedAdmin):
    list_display = ("sent_at", "recipients", "subject")
    search_fields = ("recipients", "subject")
    date_hierarchy = "sent_at"
    fields = (
        "sent_at", "from_email", "recipients", "subject", "message_headers", "text_part",
        "html_part",
    )  # fmt: skip
    readonly_fields = ("message_headers", "text_part", "html_part")

    @admin.display(description=_("Headers"))
    def message_headers(self, obj: OutboxMessage) -> str:
        lines = "\n".join(f"{name}: {value}" for name, value in _parsed(obj).items())
        return format_html('<pre class="outbox-headers">{}</pre>', lines)

    @admin.display(description=_("Text"))
    def text_part(self, obj: OutboxMessage) -> str:
        # A message stored without its raw form shows the text kept beside it.
        text = _part(obj, "plain") or obj.body
        return format_html('<pre class="outbox-text">{}</pre>', text)

    @admin.display(description=_("HTML"))
    def html_part(self, obj: OutboxMessage) -> str:
        if _part(obj, "html") is None:
            return str(_("(no HTML part)"))
        url = reverse(f"{self.admin_site.name}:outbox_outboxmessage_html", args=[obj.pk])
        return format_html(
            '<iframe class="outbox-html" sandbox="" src="{}" title="{}" width="660" '
            'height="600"></iframe>',
            url,
            _("The message's HTML"),
        )

    def get_urls(self) -> list[URLPattern]:
        html = path(
            "<int:pk>/html/",
            self.admin_site.admin_view(self.html_view),
            name="outbox_outboxmessage_html",
        )
        return [html, *super().get_urls()]

    @xframe_options_sameorigin
    def html_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The HTML part alone, for the frame of the message's page: the same reason
        and the same audit as the page."""
        reason, ask = self._reason_first(request)
        if ask is not None:
            return ask
        message = get_object_or_404(OutboxMessage, pk=pk)
        html = _part(message, "html")
        if html is None:
            raise Http404("No HTML part")
        audit.record(
            audit.AuditEvent.Action.READ,
            message,
            by=request.user,  # type: ignore[arg-type]
            fields=["html"],
            reason=reason,
        )
        response = HttpResponse(html, content_type="text/html; charset=utf-8")
        response["Content-Security-Policy"] = HTML_CSP
        response["Referrer-Policy"] = "no-referrer"
        response["X-Content-Type-Options"] = "nosniff"
        return response


site.register(OutboxMessage, OutboxMessageAdmin)
