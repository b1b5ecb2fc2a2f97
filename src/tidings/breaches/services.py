"""The breach register's writes (P33, GDPR art. 33 and 34), each in one transaction with
its audit event (P7).

1. `record_incident`: when it was detected and when the operator became aware (the
   clock runs from awareness; awareness before detection is refused; a gap needs a
   written reason).
2. `qualify_not_a_breach` / `qualify_breach`: once, by a named person; never deleted.
3. `scope_incident`: the people and records touched, from the data map
   (privacy.breach_scope). Scoping tells nobody: it is the dry run.
4. `assess_severity`: ENISA's method proposes (breaches.severity); a named person sets
   the figures and the level and says why. The proposal is never applied by itself.
5. `file_report`: a filing of the art. 33(3) report; later phases are new filings. The
   first fixes the deadline and the lateness; a late one needs its reasons. Recording
   it is a disclosure to an authority (P25).
6. `send_notices`: one notice per person and role, in their language, through the one
   outbound pipeline (purpose notice); a rerun, or a second click, tells nobody twice.
7. `escalate_clocks`: the privacy officers are mailed as each open obligation's own
   clock (breaches.obligations) reaches a third, two thirds and five sixths of its time
   and its deadline: 24, 48, 60 and 72 hours for the 72-hour ones; once per step and
   obligation. Without officers, the operator's privacy address; without either, the
   step waits.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from tidings.accounts.models import User
from tidings.audience import mailability
from tidings.audience.notices import mail_contact
from tidings.breaches import obligations, severity
from tidings.breaches.models import (
    Assessment,
    Filing,
    Incident,
    Notice,
    Scope,
)
from tidings.core import baseurl
from tidings.core.mail import Purpose, send_templated
from tidings.core.text import NUL
from tidings.privacy import breach_scope, office
from tidings.staff import audit

Action = audit.AuditEvent.Action
logger = logging.getLogger("tidings")


class BreachError(ValueError):
    """A record the breach register cannot make; the message says why."""


def record_incident(
    *,
    by: User,
    summary: str,
    detected_at: datetime,
    aware_at: datetime | None = None,
    gap_reason: str = "",
    description: str = "",
    drill: bool = False,
) -> Incident:
    """Open an incident in the register; its 72-hour clock starts at `aware_at`. A
    `drill` is a rehearsal: in the register, never counted, never reported."""
    now = timezone.now()
    aware_at = aware_at or detected_at
    gap_reason = gap_reason.strip()
    if not summary.strip():
        raise BreachError(_("Say in a line what happened."))
    if aware_at < detected_at:
        raise BreachError(_("Awareness cannot come before detection."))
    if detected_at > now or aware_at > now:
        raise BreachError(_("An incident is recorded once it is known: not a future date."))
    if aware_at > detected_at and not gap_reason:
        raise BreachError(
            _("Awareness came after detection: write why (the clock runs from awareness).")
        )
    with transaction.atomic():
        incident = Incident.objects.create(
            summary=summary.strip(),
            description=description.strip(),
            detected_at=detected_at,
            aware_at=aware_at,
            gap_reason=gap_reason,
            recorded_by=by,
            drill=drill,
        )
        audit.record(Action.CREATE, incident, by=by, fields=["summary", "aware_at"])
    return incident


def _lock_open(incident: Incident) -> Incident:
    locked = Incident.objects.select_for_update().get(pk=incident.pk)
    if locked.status != Incident.Status.OPEN:
        raise BreachError(_("This incident is already qualified; its qualification stays."))
    return locked


def qualify_not_a_breach(incident: Incident, *, by: User, reason: str) -> Incident:
    """Record that the incident is no personal-data breach: who, why, when (art. 33(5))."""
    if not reason.strip():
        raise BreachError(_("Say why it is not a personal-data breach."))
    with transaction.atomic():
        incident = _lock_open(incident)
        incident.status = Incident.Status.NOT_A_BREACH
        incident.qualification_reason = reason.strip()
        incident.qualified_by = by
        incident.qualified_at = timezone.now()
        incident.save()
        audit.record(Action.UPDATE, incident, by=by, fields=["status", "qualification_reason"])
    return incident


QUALIFIED_FIELDS = [
    "status", "confidentiality", "integrity", "availability", "cause",
    "known_recipients", "recoverable", "malicious", "unintelligible",
]  # fmt: skip


def qualify_breach(
    incident: Incident,
    *,
    by: User,
    confidentiality: bool = False,
    integrity: bool = False,
    availability: bool = False,
    cause: str,
    consequences: str,
    measures: str,
    known_recipients: bool = False,
    recoverable: bool = False,
    malicious: bool = False,
    unintelligible: bool = False,
) -> Incident:
    """Record that it is a personal-data breach, its nature, cause, likely consequences
    and measures (art. 33(3)(a), (c), (d)), and the circumstances the severity weighs."""
    if not (confidentiality or integrity or availability):
        raise BreachError(_("Say what was lost: confidentiality, integrity or availability."))
    if not (cause.strip() and consequences.strip() and measures.strip()):
        raise BreachError(_("Give the cause, the likely consequences and the measures."))
    with transaction.atomic():
        incident = _lock_open(incident)
        incident.status = Incident.Status.BREACH
        incident.confidentiality = confidentiality
        incident.integrity = integrity
        incident.availability = availability
        incident.cause = cause.strip()
        incident.consequences = consequences.strip()
        incident.measures = measures.strip()
        incident.known_recipients = known_recipients and confidentiality
        incident.recoverable = recoverable and (integrity or availability)
        incident.malicious = malicious
        incident.unintelligible = unintelligible
        incident.qualified_by = by
        incident.qualified_at = timezone.now()
        incident.save()
        audit.record(
            Action.UPDATE,
            incident,
            by=by,
            fields=QUALIFIED_FIELDS,
        )
    return incident


def scope_incident(
    incident: Incident,
    *,
    by: User,
    entries: list[str],
    account_ids: list[int] | None = None,
    window_start: datetime | None = None,
    window_end: datetime | None = None,
    special_categories: bool = False,
) -> Scope:
    """Compute and keep who and what the breach touched; tells nobody. `special_categories`
    is staff's word that the data holds some (the map cannot know a contact's
    attributes)."""
    incident = Incident.objects.get(pk=incident.pk)  # as qualified now, not as passed
    if incident.status != Incident.Status.BREACH:
        raise BreachError(_("Qualify the incident as a breach before scoping it."))
    chosen = [breach_scope.entry_by_label(label) for label in entries]
    if not entries or None in chosen:
        raise BreachError(_("Choose what was touched among the tables of the data map."))
    ids = sorted(set(account_ids or []))
    accounts = breach_scope.accounts_named(ids)
    if ids and accounts.count() != len(ids):
        raise BreachError(_("No account has one of those numbers."))
    if window_start and window_end and window_end < window_start:
        raise BreachError(_("The time window ends before it starts."))
    found = breach_scope.compute([e for e in chosen if e is not None], accounts, window_end)
    if not found.accounts:
        raise BreachError(_("This scope matches nobody: nothing of it is in those tables."))
    with transaction.atomic():
        scope = Scope.objects.create(
            incident=incident,
            entries=sorted(entries),
            account_ids=ids,
            window_start=window_start,
            window_end=window_end,
            per_account=[a.as_dict() for a in found.accounts],
            categories=found.categories,
            customers_affected=found.users,
            contacts_affected=found.contacts,
            records_affected=found.records,
            special_categories=special_categories,
            computed_by=by,
        )
        # New obligations may come with the new scope: the clock runs again for them.
        Incident.objects.filter(pk=incident.pk).update(clock_done=False)
        audit.record(
            Action.CREATE, scope, by=by, fields=["entries", "account_ids", "special_categories"]
        )
    return scope


def current_scope(incident: Incident) -> Scope | None:
    return incident.scopes.first()


def severity_proposal(incident: Incident) -> severity.Proposal | None:
    """What the ENISA method proposes from the current scope (None before scoping)."""
    scope = current_scope(incident)
    if incident.status != Incident.Status.BREACH or scope is None:
        return None
    return severity.propose(incident, scope)


def current_assessment(incident: Incident) -> Assessment | None:
    return incident.assessments.first()


def assess_severity(
    incident: Incident,
    *,
    by: User,
    dpc: Decimal,
    ei: Decimal,
    confidentiality: Decimal,
    integrity: Decimal,
    availability: Decimal,
    malicious: Decimal,
    level: str,
    reason: str,
) -> Assessment:
    """A named person sets the severity (the figures and the level) and says why; the
    proposal of the moment is kept beside it. A new assessment replaces the last."""
    reason = reason.strip()
    if not reason:
        raise BreachError(_("Say why the severity is what you set, even if it is the proposal."))
    figures_allowed = (
        dpc in severity.DPC_VALUES
        and ei in severity.EI_VALUES
        and all(cb in severity.CB_VALUES for cb in (confidentiality, integrity, availability))
        and malicious in severity.MALICIOUS_VALUES
        and level in Assessment.Level.values
    )
    if not figures_allowed:
        raise BreachError(_("These figures are not the method's."))
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident.pk)
        proposal = severity_proposal(incident)
        if proposal is None:
            raise BreachError(_("Qualify and scope the breach before assessing its severity."))
        score = severity.score_of(dpc, ei, confidentiality, integrity, availability, malicious)
        assessment = Assessment.objects.create(
            incident=incident,
            dpc=dpc,
            ei=ei,
            cb_confidentiality=confidentiality,
            cb_integrity=integrity,
            cb_availability=availability,
            cb_malicious=malicious,
            score=score,
            level=level,
            reason=reason,
            proposal=proposal.as_dict(),
            decided_by=by,
        )
        audit.record(
            Action.CREATE, assessment, by=by, fields=["score", "level", "reason"],
            reason=f"breach severity of incident {incident.pk}: {level} ({score})",
        )  # fmt: skip
    return assessment


def report_content(incident: Incident, scope: Scope | None) -> dict[str, Any]:
    """The art. 33(3) fields, laid out as an authority's form asks for them. Counts and
    categories only: no affected person's name or address (a test checks)."""
    operator = settings.OPERATOR
    return {
        "controller": operator["name"],
        "contact": {
            "name": operator["privacy_contact_name"],
            "email": operator["privacy_email"],
            "postal_address": operator["postal_address"],
        },
        "incident": incident.pk,
        "what_happened": incident.summary,
        "details": incident.description,
        "detected_at": incident.detected_at.isoformat(),
        "aware_at": incident.aware_at.isoformat(),
        "awareness_gap_reason": incident.gap_reason,
        "nature": incident.natures(),
        "cause": incident.cause,
        "window_start": scope.window_start.isoformat() if scope and scope.window_start else None,
        "window_end": scope.window_end.isoformat() if scope and scope.window_end else None,
        "data_categories": scope.categories if scope else [],
        "approximate_people": {
            "customers_users": scope.customers_affected if scope else None,
            "contacts_of_customers": scope.contacts_affected if scope else None,
        },
        "approximate_records": scope.records_affected if scope else None,
        "accounts_affected": len(scope.per_account) if scope else None,
        "likely_consequences": incident.consequences,
        "measures": incident.measures,
        "severity": severity_of(incident),
    }


def severity_of(incident: Incident) -> dict[str, Any] | None:
    """The severity as it stands (the latest assessment), for the report and the
    processor's notice: ENISA's figures, the level, who decided it, when and why; None
    while nobody has set it (a proposal is never reported as a decision)."""
    assessment = current_assessment(incident)
    if assessment is None:
        return None
    who = assessment.decided_by
    return {
        "method": "ENISA 2013: SE = DPC x EI + CB",
        "level": assessment.level,
        "level_label": str(Assessment.Level(assessment.level).label),
        "score": str(assessment.score),
        "dpc": str(assessment.dpc),
        "ei": str(assessment.ei),
        "cb": {
            "confidentiality": str(assessment.cb_confidentiality),
            "integrity": str(assessment.cb_integrity),
            "availability": str(assessment.cb_availability),
            "malicious_intent": str(assessment.cb_malicious),
        },
        "decided_by": (who.name or who.email) if who else "",
        "decided_at": assessment.decided_at.isoformat(),
        "reason": assessment.reason,
    }


def file_report(
    incident: Incident,
    *,
    by: User,
    reference: str = "",
    late_reason: str = "",
    jurisdiction: str = "",
) -> Filing:
    """File the report (or its next phase) with the authority of `jurisdiction` (one of
    the breach's obligations; the operator's own by default). The first filing to an
    authority freezes its deadline and lateness, and a late one needs its reasons.
    Recorded as a disclosure (P25)."""
    now = timezone.now()
    own = obligations.operator_jurisdiction()
    jurisdiction = jurisdiction.strip() or own
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident.pk)
        if incident.status != Incident.Status.BREACH:
            raise BreachError(_("Only a breach is reported to the authority."))
        if incident.drill:
            raise BreachError(_("A drill is never reported to the authority."))
        scope = current_scope(incident)
        if scope is None:
            raise BreachError(_("Scope the breach before reporting it: the report needs counts."))
        duty = next(
            (
                o
                for o in obligations.obligations_for(incident, scope)
                if o.key == f"authority:{jurisdiction}"
            ),
            None,
        )
        if duty is None:
            raise BreachError(_("This breach has no obligation towards that authority."))
        authority = duty.recipient.removesuffix(f" ({jurisdiction})")
        filed = incident.filings.filter(
            jurisdiction__in=[jurisdiction, *([""] if jurisdiction == own else [])]
        )
        first = filed.order_by("phase").first()
        deadline = first.deadline if first else duty.target
        late = first.late if first else now > deadline
        if late and first is None and not late_reason.strip():
            raise BreachError(
                _("The 72 hours have passed: the report needs the reasons for the delay.")
                if deadline == incident.deadline
                else _("The deadline has passed: the report needs the reasons for the delay.")
            )
        try:
            with transaction.atomic():
                filing = Filing.objects.create(
                    incident=incident,
                    phase=incident.filings.count() + 1,
                    filed_at=now,
                    filed_by=by,
                    deadline=deadline,
                    late=late,
                    late_reason=late_reason.strip(),
                    authority=authority,
                    jurisdiction=jurisdiction,
                    reference=reference.strip(),
                    content=report_content(incident, scope),
                )
        except IntegrityError as error:
            raise BreachError(_("Another filing was saved at the same moment: reload.")) from error
        audit.record(Action.CREATE, filing, by=by, fields=["content"])
        office.record_disclosure(
            by=by,
            authority=authority,
            legal_ground=_("GDPR art. 33: notification of a personal-data breach")
            if jurisdiction in ("EU", "GB")
            else _("%(source)s: notification of a personal-data breach") % {"source": duty.source},
            data_disclosed=_(
                "breach report no. %(incident)s, phase %(phase)s: counts and categories, "
                "no affected person's data"
            )
            % {"incident": incident.pk, "phase": filing.phase},
            reference=filing.reference,
            disclosed_at=now,
        )
    return filing


def send_notices(incident: Incident, *, by: User | None) -> int:
    """Tell every person of the current scope, once: each user of an account whose own
    data was touched (controller, art. 34) and each user of an account whose contacts
    were (processor, art. 33(2): their account's facts and a notice for their contacts).
    Safe to run again: a person already told is skipped. Returns how many were told."""
    incident = Incident.objects.get(pk=incident.pk)
    if incident.status != Incident.Status.BREACH:
        raise BreachError(_("Only a breach is notified."))
    scope = current_scope(incident)
    if scope is None:
        raise BreachError(_("Scope the breach before telling anyone."))
    told = 0
    for row in scope.per_account:
        for role in _roles(row):
            users = breach_scope.users_told(row["account"]).order_by("pk")
            for user in users.iterator():
                if incident.drill:
                    told += _rehearse(incident, scope, row, role, user)
                else:
                    told += _tell(incident, scope, row, role, user, by)
    return told


def _rehearse(incident: Incident, scope: Scope, row: dict[str, Any], role: str, user: Any) -> int:
    """A drill's notice: the mail as the person would get it, marked as a drill and kept
    in the local outbox; no notice row, so no banner and nothing in their account."""
    incident_url = baseurl.absolute(reverse("breach_incident", args=[incident.pk]))
    with transaction.atomic():
        send_templated(
            f"breaches/mail/{role}",
            [user.email],
            {
                "incident": incident,
                "scope": scope,
                "row": row,
                "severity": severity_of(incident),
                "account_url": baseurl.absolute(reverse("accounts:my_account")),
                "notice_url": incident_url,
            },
            key=f"breach-drill:{incident.pk}:{role}:{user.pk}",
            drill=True,
        )
        audit.record(
            Action.CREATE, incident, by=None, fields=["drill"], account_id=row["account"],
            reason=f"breach drill {incident.pk}: {role} notice to user {user.pk} in the outbox",
        )  # fmt: skip
    return 1


def _roles(row: dict[str, Any]) -> list[str]:
    """In which roles the users of one account of a scope are told: of their own data
    (controller) when it was touched, of their contacts' (processor) when theirs were."""
    wanted = ((Notice.Role.CONTROLLER, row["users"]), (Notice.Role.PROCESSOR, row.get("processor")))
    return [role for role, touched in wanted if touched]


def notices_untold(incident: Incident) -> int:
    """How many notices (one per person and role) of the current scope are still to
    send: the clock escalates until there are none."""
    scope = current_scope(incident)
    if scope is None:
        return 0
    untold = 0
    for role in Notice.Role.values:
        accounts = [row["account"] for row in scope.per_account if role in _roles(row)]
        told = Notice.objects.filter(incident=incident, role=role).values("user_ref")
        untold += breach_scope.users_told(*accounts).exclude(pk__in=told).count()
    return untold


def _tell(incident: Incident, scope: Scope, row: dict[str, Any], role: str, user: Any,
          by: User | None) -> int:  # fmt: skip
    """One person, one notice: the row and the mail commit together, or neither."""
    try:
        return _tell_once(incident, scope, row, role, user, by)
    except IntegrityError:
        return 0  # told at the same moment by another run


def _tell_once(incident: Incident, scope: Scope, row: dict[str, Any], role: str, user: Any,
               by: User | None) -> int:  # fmt: skip
    with transaction.atomic():
        if Notice.objects.filter(incident=incident, role=role, user_ref=user.pk).exists():
            return 0
        notice = Notice.objects.create(
            incident=incident,
            role=role,
            account_id=row["account"],
            account_ref=row["account"],
            user=user,
            user_ref=user.pk,
        )
        posted = send_templated(
            f"breaches/mail/{role}",
            [user.email],
            {
                "incident": incident,
                "scope": scope,
                "row": row,
                "severity": severity_of(incident),
                "notice": notice,
                "account_url": baseurl.absolute(reverse("accounts:my_account")),
                "notice_url": baseurl.absolute(reverse("breach_notice", args=[notice.pk])),
            },
            account_id=None,
            user_ids={user.email: user.pk},
            key=f"breach:{incident.pk}:{role}:{user.pk}",
        )
        notice.mail_uuid = posted.get(user.email, "")
        notice.save(update_fields=["mail_uuid"])
        audit.record(
            Action.CREATE, notice, by=by, fields=["role"], account_id=row["account"],
            reason=f"breach notice for incident {incident.pk}",
        )  # fmt: skip
    return 1


# Contacts posted per transaction when a customer sends the notice to their contacts.
CONTACT_BATCH = 500


def send_contact_notice(notice: Notice, *, by: User, subject: str, text: str) -> int:
    """The customer's one click: their notice (the ready one, as they edited it) to
    each of their contacts the breach touched, through their relay, with the notice
    purpose of the one mailability rule (hard bounces skipped, the unsubscribed told).
    Once per contact, however often it is clicked. Returns how many were addressed."""
    subject, text = " ".join(subject.split()), text.strip()
    if notice.role != Notice.Role.PROCESSOR or notice.user_id != by.pk:
        raise BreachError(_("This notice is not yours to send."))
    if notice.account is None:
        raise BreachError(_("This account no longer exists."))
    if not subject or not text:
        raise BreachError(_("Give the notice a subject and a text."))
    if NUL in subject or NUL in text or len(subject) > 200 or len(text) > 20000:
        raise BreachError(_("The subject or the text cannot be sent as it is."))
    scope = current_scope(notice.incident)
    if scope is None:  # pragma: no cover - a processor notice is only sent from a scope
        raise BreachError(_("This breach has no scope."))
    entries = [e for e in map(breach_scope.entry_by_label, scope.entries) if e is not None]
    touched = breach_scope.contacts_touched(entries, notice.account, scope.window_end)
    contacts = touched.filter(mailability.contacts_q(Purpose.NOTICE))
    told, last = 0, 0
    while True:
        batch = list(contacts.filter(pk__gt=last).order_by("pk").values_list("pk", "email")[
            :CONTACT_BATCH
        ])  # fmt: skip
        if not batch:
            break
        with transaction.atomic():
            for pk, email in batch:
                mail_contact(
                    notice.account,
                    to=email,
                    template="breaches/mail/contact",
                    context={"subject": subject, "text": text},
                    purpose=Purpose.NOTICE,
                    contact_id=pk,
                    key=f"breach-contact:{notice.incident_id}:{pk}",
                )
        told += len(batch)
        last = batch[-1][0]
    with transaction.atomic():
        notice.contacts_told_at = timezone.now()
        notice.contacts_told = told
        notice.save(update_fields=["contacts_told_at", "contacts_told"])
        audit.record(
            Action.CREATE, notice, by=by, fields=["contacts_told"], account_id=notice.account_ref,
            reason=f"breach notice of incident {notice.incident_id} sent to {told} contacts",
        )  # fmt: skip
    return told


def acknowledge(notice: Notice, *, by: User) -> None:
    """The customer has read the in-app notice: the banner goes."""
    if notice.user_id != by.pk or notice.acknowledged_at is not None:
        return
    with transaction.atomic():
        notice.acknowledged_at = timezone.now()
        notice.save(update_fields=["acknowledged_at"])
        audit.record(Action.UPDATE, notice, by=by, fields=["acknowledged_at"])


def escalate_clocks(now: datetime | None = None) -> int:
    """Mail the privacy officers about each breach one of whose open obligations has
    reached a new step of its own clock (breaches.obligations.ESCALATION_STEPS: 24, 48,
    60 and 72 hours for the GDPR's 72 hours; a state's 30 days in proportion): one mail
    per incident and run, listing them; each step of each obligation once, however
    often and however many at once the job runs (the incident's row is locked). An
    obligation met (its filing, its notices) stops its clock; "not a breach" stops them
    all. Returns how many incidents were escalated."""
    now = now or timezone.now()
    officers = office.privacy_office_addresses()
    if not officers:
        # No step is marked done that nobody was told of: they wait for the next run.
        logger.error(
            "Breach clocks: no privacy officer, admin nor TIDINGS_PRIVACY_EMAIL to tell; "
            "the escalation waits"
        )
        return 0
    due = Incident.objects.filter(
        drill=False,
        clock_done=False,
        status__in=[Incident.Status.OPEN, Incident.Status.BREACH],
        aware_at__lte=now - obligations.FIRST_STEP,
    )
    escalated = 0
    for pk in due.values_list("pk", flat=True):
        with transaction.atomic():
            incident = Incident.objects.select_for_update().get(pk=pk)
            if incident.clock_done:
                continue  # stopped by another run
            escalated += _escalate(incident, now, officers)
    return escalated


def _escalate(incident: Incident, now: datetime, officers: list[str]) -> int:
    """One incident's escalation, in the caller's transaction with its row locked."""
    done = dict(incident.escalations)
    last = len(obligations.ESCALATION_STEPS)
    reached: list[tuple[obligations.Obligation, int]] = []
    running = False
    for duty in obligations.obligations_for(incident, current_scope(incident)):
        if not duty.open:
            continue
        step = duty.step(incident.aware_at, now)
        running = running or step < last
        if step > done.get(duty.key, 0):
            reached.append((duty, step))
            done[duty.key] = step
    if not reached:
        if not running and incident.status == Incident.Status.BREACH:
            incident.clock_done = True  # nothing left to escalate until a new scope
            incident.save(update_fields=["clock_done"])
        return 0
    incident.escalations = done
    incident.save(update_fields=["escalations"])
    steps = ", ".join(f"{duty.key} step {step}" for duty, step in reached)
    audit.record(
        Action.UPDATE, incident, by=None, fields=["escalations"],
        reason=f"breach clock: privacy officers mailed ({steps})",
    )  # fmt: skip
    lines: list[dict[str, Any]] = [
        {
            "duty": duty,
            "missed": step == last,
            "hours": duty.step_hours(incident.aware_at, step),
            "policy": duty.due is None,
        }
        for duty, step in reached
    ]
    authorities = [line for line in lines if line["duty"].key.startswith("authority:")]
    first = (authorities or lines)[0]
    missed = next((line for line in lines if line["missed"]), None)
    key = hashlib.sha256(steps.encode()).hexdigest()[:16]
    send_templated(
        "breaches/mail/clock",
        officers,
        {
            "incident": incident,
            "lines": lines,
            "hours": first["hours"],
            "missed": missed,
            "authorities": bool(authorities),
            "report_missed": any(line["missed"] for line in authorities),
            "filed": incident.filings.exists(),
            # A range: the template counts it with |length, as mail templates count.
            "untold": range(notices_untold(incident)),
            "now": now,
            "incident_url": baseurl.absolute(reverse("breach_incident", args=[incident.pk])),
        },
        key=f"breach-clock:{incident.pk}:{key}",
    )
    return 1
