"""The desk's saved answers in the staff console: the support role may add and change
them (staff.roles grants desk.add_cannedanswer and desk.change_cannedanswer), and the
conversation's page offers them under "Canned answer"."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from tidings.desk import services
from tidings.desk.models import CannedAnswer
from tidings.staff.admin_site import site
from tidings.staff.console import AuditedModelAdmin


class CannedAnswerAdmin(AuditedModelAdmin):
    """Text with placeholders, no personal data: saved through the desk's service."""

    list_display = ("title",)
    search_fields = ("title",)
    fields = ("title", "body")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("desk.add_cannedanswer")

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        services.save_canned_answer(obj)


site.register(CannedAnswer, CannedAnswerAdmin)
