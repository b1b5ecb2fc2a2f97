"""The authority report as a document: the art. 33(3) fields of the latest filing (or,
before any, of the register now) as structured data (JSON) and as a PDF laid out like
an authority's form. Made from Tidings's own template; the PDF fetches nothing."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone

from tidings.breaches.models import Incident
from tidings.breaches.services import current_scope, report_content


def content_of(incident: Incident) -> dict[str, Any]:
    filing = incident.filings.order_by("-phase").first()
    if filing is not None:
        return {
            **filing.content,
            "phase": filing.phase,
            "filed_at": filing.filed_at.isoformat(),
            "deadline": filing.deadline.isoformat(),
            "late": filing.late,
            "late_reason": filing.late_reason,
            "authority": filing.authority,
            "reference": filing.reference,
        }
    draft = report_content(incident, current_scope(incident))
    return {**draft, "phase": None, "deadline": incident.deadline.isoformat()}


def _refuse_fetch(url: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    raise ValueError(f"the breach report fetches nothing ({url})")


DATED = ("detected_at", "aware_at", "window_start", "window_end", "deadline", "filed_at")


def _dates(content: dict[str, Any]) -> dict[str, datetime | None]:
    """The report's times (ISO 8601 in its structured data) as datetimes, for the PDF to
    show as the staff pages do ("2026-12-06 19:37 UTC"), not as raw ISO strings."""
    values = {name: content.get(name) for name in DATED}
    values["decided_at"] = (content.get("severity") or {}).get("decided_at")
    return {name: datetime.fromisoformat(v) if v else None for name, v in values.items()}


def export(incident: Incident, fmt: str) -> tuple[bytes, str, str]:
    """(content, content type, file name) of the report as `fmt` ("json" or "pdf")."""
    content = content_of(incident)
    name = f"breach-report-{incident.pk}"
    if fmt == "json":
        body = json.dumps(content, indent=2, ensure_ascii=False).encode()
        return body, "application/json", f"{name}.json"
    if fmt != "pdf":
        raise ValueError(f"no export as {fmt}")
    # A heavy import (cairo, pango), for this export only (as sending.reports does).
    from weasyprint import CSS, HTML

    html = render_to_string(
        "breaches/report_pdf.html",
        {
            "report": content,
            "incident": incident,
            "made_at": timezone.now(),
            "dates": _dates(content),
        },
    )
    style = CSS(string=render_to_string("breaches/report_pdf.css"), url_fetcher=_refuse_fetch)
    pdf = HTML(string=html, url_fetcher=_refuse_fetch).write_pdf(stylesheets=[style])
    return pdf, "application/pdf", f"{name}.pdf"
