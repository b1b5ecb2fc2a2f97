"""Personal-data breaches (P33, GDPR art. 33 and 34): the register of incidents, the
scope each was given from the data map, the filings to the authority and the notices.

Nothing here is ever deleted (art. 33(5): every breach is documented, notified or not):
an incident qualified "not a breach" stays with who decided, why and when; a filing is
never edited (a correction is a new filing); a notice row is the proof one person was
told, and the reason a rerun of the notice job tells nobody twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tidings.privacy import breach_scope

# The authority must be told within 72 hours of the operator becoming aware (art. 33(1)).
AUTHORITY_DEADLINE = timedelta(hours=72)


class Incident(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("not qualified yet")
        NOT_A_BREACH = "not_a_breach", _("not a personal-data breach")
        BREACH = "breach", _("personal-data breach")

    summary = models.CharField(_("what happened"), max_length=300)
    description = models.TextField(_("details"), blank=True, default="")
    detected_at = models.DateTimeField(_("detected at"))
    aware_at = models.DateTimeField(_("aware at"))
    # Why awareness came after detection (the clock runs from awareness).
    gap_reason = models.TextField(_("why awareness came later"), blank=True, default="")
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    recorded_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    qualified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    qualified_at = models.DateTimeField(null=True, blank=True)
    # For "not a breach": why. For a breach: its nature (art. 33(3)(a)), cause and
    # measures (33(3)(d)), likely consequences (33(3)(c)).
    qualification_reason = models.TextField(blank=True, default="")
    confidentiality = models.BooleanField(_("loss of confidentiality"), default=False)
    integrity = models.BooleanField(_("loss of integrity"), default=False)
    availability = models.BooleanField(_("loss of availability"), default=False)
    cause = models.TextField(_("cause"), blank=True, default="")
    consequences = models.TextField(_("likely consequences"), blank=True, default="")
    measures = models.TextField(_("measures taken or proposed"), blank=True, default="")
    # The circumstances ENISA's severity method weighs (breaches.severity): to whom the
    # data went, whether it can be restored, whether someone meant harm, whether it
    # was unintelligible (encrypted or hashed, the key safe).
    known_recipients = models.BooleanField(_("disclosed only to known recipients"), default=False)
    recoverable = models.BooleanField(_("the data can be restored"), default=False)
    malicious = models.BooleanField(_("malicious intent"), default=False)
    unintelligible = models.BooleanField(
        _("the data was unintelligible (encrypted or hashed, the key safe)"), default=False
    )
    # Per obligation (breaches.obligations: "authority:EU", "processor:12"), the last step
    # of its clock the officers were mailed about: each step is mailed once.
    escalations = models.JSONField(default=dict, blank=True)
    # Every obligation met or past its deadline's mail: the clock job skips it (a new
    # scope starts it again).
    clock_done = models.BooleanField(default=False)
    # A rehearsal (`tidings breach drill`): kept in the register, never counted as a
    # breach, its mail only ever in the local outbox.
    drill = models.BooleanField(_("drill"), default=False)

    class Meta:
        ordering = ["-aware_at", "-pk"]
        verbose_name = _("breach incident")
        verbose_name_plural = _("breach incidents")

    def __str__(self) -> str:
        return f"#{self.pk} {self.summary}"

    @property
    def deadline(self) -> datetime:
        """When the authority must have the report: 72 hours from awareness."""
        return self.aware_at + AUTHORITY_DEADLINE

    def natures(self) -> list[str]:
        found = [
            (self.confidentiality, _("confidentiality")),
            (self.integrity, _("integrity")),
            (self.availability, _("availability")),
        ]
        return [str(label) for on, label in found if on]


class Scope(models.Model):
    """What one scoping found, computed from the data map: account ids and counts,
    never a person's name or address. The latest one is the incident's scope."""

    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="scopes")
    entries = models.JSONField(default=list)  # data-map labels ("audience.Contact")
    account_ids = models.JSONField(default=list)  # [] for every account
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    # Per account: {"account": id, "users": n, "contacts": n, "records": {label: n}}.
    per_account = models.JSONField(default=list)
    categories = models.JSONField(default=list)
    customers_affected = models.PositiveIntegerField(default=0)  # users told as controller
    contacts_affected = models.PositiveIntegerField(default=0)  # as processor
    records_affected = models.PositiveIntegerField(default=0)
    # Staff's word that the data touched holds special categories (art. 9, 10) the map
    # cannot know of: a customer's contacts' attributes may say someone's health.
    special_categories = models.BooleanField(_("special categories involved"), default=False)
    computed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-computed_at", "-pk"]
        verbose_name = _("breach scope")
        verbose_name_plural = _("breach scopes")

    def __str__(self) -> str:
        return f"scope of incident {self.incident_id} at {self.computed_at:%Y-%m-%d %H:%M}"

    @property
    def accounts(self) -> list[int]:
        return [row["account"] for row in self.per_account]

    @property
    def per_country(self) -> dict[str, dict[str, int]]:
        """The people touched per country where the data map knows it ("" unknown):
        {"FR": {"users": 2, "contacts": 5}}."""
        return breach_scope.per_country(self.per_account)


class Filing(models.Model):
    """One filing of the report to the authority (art. 33(3)); later phases (33(4)) are
    new filings. The first one fixes the deadline and whether it was late."""

    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="filings")
    phase = models.PositiveSmallIntegerField()
    filed_at = models.DateTimeField(default=timezone.now)
    filed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    deadline = models.DateTimeField()
    late = models.BooleanField(default=False)
    late_reason = models.TextField(blank=True, default="")
    authority = models.CharField(max_length=300)
    # The rule table's jurisdiction whose authority it went to ("EU", "GB", "US-TX"...;
    # empty in filings made before it was kept: the operator's own).
    jurisdiction = models.CharField(max_length=16, blank=True, default="")
    reference = models.CharField(max_length=100, blank=True, default="")
    # The art. 33(3) fields as filed, frozen: counts and categories, no one's data.
    content = models.JSONField(default=dict)

    class Meta:
        ordering = ["incident", "phase"]
        constraints = [
            models.UniqueConstraint(fields=["incident", "phase"], name="one_filing_per_phase")
        ]
        verbose_name = _("breach report filing")
        verbose_name_plural = _("breach report filings")

    def __str__(self) -> str:
        return f"incident {self.incident_id}, filing {self.phase}"


class Notice(models.Model):
    """One person told of one incident: a customer's user, as controller (art. 34) or as
    the contact of the customer whose contacts were affected (processor, art. 33(2))."""

    class Role(models.TextChoices):
        CONTROLLER = "controller", _("your own data (Tidings is the controller)")
        PROCESSOR = "processor", _("your contacts' data (Tidings is your processor)")

    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="notices")
    role = models.CharField(max_length=16, choices=Role.choices)
    account = models.ForeignKey(
        "accounts.Account", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The account's number, kept when the account is erased: counted, not re-identified.
    account_ref = models.PositiveBigIntegerField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    user_ref = models.PositiveBigIntegerField()
    # The message in the outbound pipeline's ledger.
    mail_uuid = models.CharField(max_length=36, blank=True, default="")
    sent_at = models.DateTimeField(default=timezone.now)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    # Processor role: when this user sent the ready notice to the account's contacts
    # touched (one click, never without it), and to how many.
    contacts_told_at = models.DateTimeField(null=True, blank=True)
    contacts_told = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["incident", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "role", "user_ref"], name="one_notice_per_person_and_role"
            )
        ]
        verbose_name = _("breach notice")
        verbose_name_plural = _("breach notices")

    def __str__(self) -> str:
        return f"incident {self.incident_id}: {self.role} notice to user {self.user_ref}"


class Assessment(models.Model):
    """A severity decided by a named person with the ENISA method (SE = DPC x EI + CB),
    with the proposal Tidings made at that moment and why the figures are what they
    are. Never edited: a new assessment replaces the last one; the latest stands."""

    class Level(models.TextChoices):
        LOW = "low", _("low")
        MEDIUM = "medium", _("medium")
        HIGH = "high", _("high")
        VERY_HIGH = "very_high", _("very high")

    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="assessments")
    # Data processing context (1-4), ease of identification (0.25-1), circumstances.
    dpc = models.DecimalField(max_digits=3, decimal_places=2)
    ei = models.DecimalField(max_digits=3, decimal_places=2)
    cb_confidentiality = models.DecimalField(max_digits=3, decimal_places=2)
    cb_integrity = models.DecimalField(max_digits=3, decimal_places=2)
    cb_availability = models.DecimalField(max_digits=3, decimal_places=2)
    cb_malicious = models.DecimalField(max_digits=3, decimal_places=2)
    score = models.DecimalField(max_digits=4, decimal_places=2)
    level = models.CharField(max_length=16, choices=Level.choices)
    reason = models.TextField()
    # What Tidings proposed, as it stood (breaches.severity.Proposal.as_dict()).
    proposal = models.JSONField(default=dict)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-decided_at", "-pk"]
        verbose_name = _("severity assessment")
        verbose_name_plural = _("severity assessments")

    def __str__(self) -> str:
        return f"incident {self.incident_id}: severity {self.level} ({self.score})"
