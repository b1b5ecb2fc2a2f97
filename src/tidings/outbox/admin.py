"""The local outbox viewer, for the operator's administrators (P7).

Mail lands here when no SMTP relay is configured. The messages are customers' personal
data, so reading them follows the console's rules: a stated reason, and an audit event
for every message listed or opened.
"""

from __future__ import annotations

from tidings.outbox.models import OutboxMessage
from tidings.staff.admin_site import site
from tidings.staff.console import ReadOnlyAuditedAdmin


class OutboxMessageAdmin(ReadOnlyAuditedAdmin):
    list_display = ("sent_at", "recipients", "subject")
    search_fields = ("recipients", "subject")
    date_hierarchy = "sent_at"
    fields = ("sent_at", "from_email", "recipients", "subject", "body")


site.register(OutboxMessage, OutboxMessageAdmin)
