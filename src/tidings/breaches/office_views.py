"""The breach register in the privacy office (privacy officers and admins only, with
the second factor; every view and change audited): incidents, their 72-hour clock,
qualification, scope, the authority report and the notices (P33)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from tidings.breaches import obligations, report, services, severity
from tidings.breaches.models import Assessment, Incident, Notice
from tidings.privacy import breach_scope
from tidings.privacy.office_views import PERMISSION
from tidings.staff import audit
from tidings.staff.admin_site import site

REASON = "privacy office: the breach register (GDPR art. 33(5))"


def _officer(request: HttpRequest) -> Any:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    return request.user


class IncidentForm(forms.Form):
    summary = forms.CharField(label=gettext_lazy("What happened, in a line"), max_length=300)
    description = forms.CharField(
        label=gettext_lazy("Details"), required=False, widget=forms.Textarea
    )
    detected_at = forms.DateTimeField(
        label=gettext_lazy("Detected at"),
        help_text=gettext_lazy("When it was first noticed (YYYY-MM-DD HH:MM)."),
    )
    aware_at = forms.DateTimeField(
        label=gettext_lazy("Aware at"),
        required=False,
        help_text=gettext_lazy(
            "When the operator became reasonably certain personal data was touched; the "
            "72-hour clock runs from here. Empty: the time of detection."
        ),
    )
    gap_reason = forms.CharField(
        label=gettext_lazy("Why awareness came later"), required=False, widget=forms.Textarea
    )


class NotBreachForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Why this is not a personal-data breach"), widget=forms.Textarea
    )


class BreachForm(forms.Form):
    confidentiality = forms.BooleanField(
        label=gettext_lazy("Loss of confidentiality (data seen or taken)"), required=False
    )
    integrity = forms.BooleanField(
        label=gettext_lazy("Loss of integrity (data altered)"), required=False
    )
    availability = forms.BooleanField(
        label=gettext_lazy("Loss of availability (data lost or unreachable)"), required=False
    )
    cause = forms.CharField(label=gettext_lazy("Cause"), widget=forms.Textarea)
    consequences = forms.CharField(label=gettext_lazy("Likely consequences"), widget=forms.Textarea)
    measures = forms.CharField(
        label=gettext_lazy("Measures taken or proposed"), widget=forms.Textarea
    )
    known_recipients = forms.BooleanField(
        label=gettext_lazy("Disclosed only to known recipients (e.g. one misdirected mail)"),
        required=False,
    )
    recoverable = forms.BooleanField(
        label=gettext_lazy("The altered or lost data can be restored (e.g. from a backup)"),
        required=False,
    )
    malicious = forms.BooleanField(
        label=gettext_lazy("Malicious intent (an attack, a theft)"), required=False
    )
    unintelligible = forms.BooleanField(
        label=gettext_lazy("The data was unintelligible (encrypted or hashed, the key safe)"),
        required=False,
    )


class ScopeForm(forms.Form):
    entries = forms.MultipleChoiceField(
        label=gettext_lazy("What was touched (tables of the data map)"),
        widget=forms.CheckboxSelectMultiple,
        choices=(),
    )
    accounts = forms.CharField(
        label=gettext_lazy("Account numbers"),
        required=False,
        help_text=gettext_lazy("Separated by commas; empty for every account."),
    )
    window_start = forms.DateTimeField(label=gettext_lazy("Exposed from"), required=False)
    window_end = forms.DateTimeField(label=gettext_lazy("Exposed until"), required=False)
    special_categories = forms.BooleanField(
        label=gettext_lazy(
            "The data touched holds special categories (health, beliefs, convictions...)"
        ),
        required=False,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["entries"].choices = [  # type: ignore[attr-defined]
            (e.label, f"{e.verbose_name} ({e.category})") for e in breach_scope.scopable_entries()
        ]

    def clean_accounts(self) -> list[int]:
        text = self.cleaned_data.get("accounts", "")
        try:
            return [int(part) for part in text.replace(" ", "").split(",") if part]
        except ValueError as error:
            raise forms.ValidationError(_("Give account numbers separated by commas.")) from error


def _figures(values: tuple[Decimal, ...]) -> list[tuple[str, str]]:
    return [(str(v), str(v)) for v in values]


class SeverityForm(forms.Form):
    dpc = forms.TypedChoiceField(
        label=gettext_lazy("Data processing context (DPC)"),
        choices=_figures(severity.DPC_VALUES),
        coerce=Decimal,
    )
    ei = forms.TypedChoiceField(
        label=gettext_lazy("Ease of identification (EI)"),
        choices=_figures(severity.EI_VALUES),
        coerce=Decimal,
    )
    confidentiality = forms.TypedChoiceField(
        label=gettext_lazy("Loss of confidentiality"),
        choices=_figures(severity.CB_VALUES),
        coerce=Decimal,
    )
    integrity = forms.TypedChoiceField(
        label=gettext_lazy("Loss of integrity"),
        choices=_figures(severity.CB_VALUES),
        coerce=Decimal,
    )
    availability = forms.TypedChoiceField(
        label=gettext_lazy("Loss of availability"),
        choices=_figures(severity.CB_VALUES),
        coerce=Decimal,
    )
    malicious = forms.TypedChoiceField(
        label=gettext_lazy("Malicious intent"),
        choices=_figures(severity.MALICIOUS_VALUES),
        coerce=Decimal,
    )
    level = forms.ChoiceField(label=gettext_lazy("Level"), choices=Assessment.Level.choices)
    reason = forms.CharField(
        label=gettext_lazy("Why (required, even when you keep the proposal)"),
        widget=forms.Textarea,
    )


def _severity_initial(proposal: severity.Proposal | None) -> dict[str, str]:
    if proposal is None:
        return {}
    fields = ("dpc", "ei", "confidentiality", "integrity", "availability", "malicious")
    return {**{name: str(getattr(proposal, name)) for name in fields}, "level": proposal.level}


class FilingForm(forms.Form):
    # The authorities of the breach's obligations, set per incident; empty: the operator's.
    jurisdiction = forms.ChoiceField(label=gettext_lazy("Filed with"), choices=[], required=False)
    reference = forms.CharField(
        label=gettext_lazy("The authority's reference"), required=False, max_length=100
    )
    late_reason = forms.CharField(
        label=gettext_lazy("Reasons for the delay (after the deadline)"),
        required=False,
        widget=forms.Textarea,
    )


def register(request: HttpRequest) -> HttpResponse:
    """Every incident, notified or not, and a form to record a new one."""
    officer = _officer(request)
    form = IncidentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            incident = services.record_incident(by=officer, **form.cleaned_data)
            messages.success(request, _("The incident is recorded: the clock runs."))
            return redirect("breach_incident", incident.pk)
        except services.BreachError as error:
            form.add_error(None, str(error))
    incidents = list(Incident.objects.all()[:200])
    audit.record_many(audit.AuditEvent.Action.LIST, incidents, by=officer, reason=REASON)
    context = {
        **site.each_context(request),
        "title": _("Breach register"),
        "now": timezone.now(),
        "incidents": incidents,
        "form": form,
    }
    status = 400 if form.errors else 200
    return TemplateResponse(request, "breaches/office/register.html", context, status=status)


ACTIONS = {
    "not_a_breach": NotBreachForm,
    "breach": BreachForm,
    "scope": ScopeForm,
    "severity": SeverityForm,
    "file": FilingForm,
}


def incident(request: HttpRequest, pk: int) -> HttpResponse:
    """One incident: its clock, qualification, scope, filings and notices."""
    officer = _officer(request)
    item = get_object_or_404(Incident, pk=pk)
    action = request.POST.get("action", "") if request.method == "POST" else ""
    proposal = services.severity_proposal(item)
    bound = {
        name: form_class(request.POST if action == name else None, prefix=name)
        for name, form_class in ACTIONS.items()
    }
    bound["severity"].initial = _severity_initial(proposal)
    duties = obligations.obligations_for(item, services.current_scope(item))
    filed_with = bound["file"].fields["jurisdiction"]
    assert isinstance(filed_with, forms.ChoiceField)
    filed_with.choices = [
        (o.key.removeprefix("authority:"), o.recipient)
        for o in duties
        if o.key.startswith("authority:")
    ]
    if action == "notify":
        try:
            told = services.send_notices(item, by=officer)
            messages.success(request, _("%(n)s people told.") % {"n": told})
            return redirect("breach_incident", item.pk)
        except services.BreachError as error:
            messages.error(request, str(error))
    elif action in bound and bound[action].is_valid():
        data = bound[action].cleaned_data
        try:
            if action == "not_a_breach":
                services.qualify_not_a_breach(item, by=officer, reason=data["reason"])
            elif action == "breach":
                services.qualify_breach(item, by=officer, **data)
            elif action == "scope":
                services.scope_incident(
                    item,
                    by=officer,
                    entries=data["entries"],
                    account_ids=data["accounts"],
                    window_start=data["window_start"],
                    window_end=data["window_end"],
                    special_categories=data["special_categories"],
                )
            elif action == "severity":
                services.assess_severity(item, by=officer, **data)
            else:
                services.file_report(item, by=officer, **data)
            messages.success(request, _("Saved."))
            return redirect("breach_incident", item.pk)
        except services.BreachError as error:
            bound[action].add_error(None, str(error))
    elif action and action not in bound:
        raise Http404
    audit.record(audit.AuditEvent.Action.READ, item, by=officer, reason=REASON)
    notices = Notice.objects.filter(incident=item)
    scope = services.current_scope(item)
    duties = obligations.obligations_for(item, scope)
    context = {
        **site.each_context(request),
        "title": str(item),
        "item": item,
        "now": timezone.now(),
        "scope": scope,
        "obligations": duties,
        # The clock's "reported" covers one authority: another still owed is shown too.
        "authority_pending": min(
            (o for o in duties if o.key.startswith("authority:") and o.open),
            key=lambda o: o.target,
            default=None,
        ),
        "unruled": obligations.countries_without_rule(scope),
        "filings": list(item.filings.order_by("phase")),
        "proposal": proposal,
        "assessments": list(item.assessments.select_related("decided_by")),
        "told": {role: notices.filter(role=role).count() for role in Notice.Role.values},
        "forms": bound,
    }
    failed = bool(action) and (any(f.errors for f in bound.values()) or action == "notify")
    return TemplateResponse(
        request, "breaches/office/incident.html", context, status=400 if failed else 200
    )


def report_download(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    """The authority report as PDF or JSON (no affected person's data in it)."""
    officer = _officer(request)
    item = get_object_or_404(Incident, pk=pk)
    if fmt not in ("pdf", "json") or item.status != Incident.Status.BREACH:
        raise Http404
    body, content_type, name = report.export(item, fmt)
    audit.record(audit.AuditEvent.Action.EXPORT, item, by=officer, reason=REASON)
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
