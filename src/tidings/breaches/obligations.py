"""Who must be told of a breach, by when: a dated rule table turned into one obligation
per recipient (P33), and the clock each obligation's escalations follow.

1. `RULES` is data: per jurisdiction, whom the law says to tell, the deadline (hours
   from awareness, or none where the law says "as soon as possible" or "without undue
   delay"), the text it comes from and the day it came into force. The rule in force
   when the operator became aware is the one that applies. What the reference notes do
   not source is marked on the rule (`to_check`) and shown on the incident's page: to
   be checked by counsel, not a silent claim.
2. The jurisdictions are the operator's own (TIDINGS_OPERATOR_COUNTRY: the UK's or
   Switzerland's rules there, the EU's for any other country or none), those where the
   scope found people whose data Tidings controls (their country from the data map:
   their account's billing identity), and those the operator adds in
   TIDINGS_BREACH_JURISDICTIONS ("CH,US-TX"), an override for people the map cannot
   place. A contact's country is for the customer's own report (Tidings is their
   processor: it tells the customer, not the contact's authority).
3. The scope gives the rest: each account whose contacts were touched is told as the
   controller of their data (processor to controller, art. 33(2)); the users of each
   account whose own data was touched are told (art. 34, promised to everyone).
4. An obligation is met by the register's own records: a filing to that authority (its
   jurisdiction kept on the filing), the notices to every user of that account. The US
   states' rules are kept as data, their deadlines counted from awareness here
   (counsel checks the statute's starting point).
5. The clock: each open obligation escalates at a third, two thirds and five sixths of
   its own time and when it is missed (`ESCALATION_STEPS`): 24, 48, 60 and 72 hours for
   the GDPR's 72 hours, 10, 20, 25 and 30 days for a state's 30 days. Where the law
   sets no time ("as soon as possible", "without undue delay"), the clock follows the
   policy's 72 hours (P33), which is stricter and satisfies both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from tidings.breaches.models import Filing, Incident, Notice, Scope
from tidings.privacy import breach_scope

# What counsel must check of a rule: the reference notes do not source it.
CHECK_DEADLINE = _("the deadline")
CHECK_THRESHOLD = _("the threshold of residents")
CHECK_IN_FORCE = _("the dates in force")
CHECK_START = _("when the time starts (counted from awareness here)")
CHECK_SOURCE = _("the statute cited")


@dataclass(frozen=True)
class Rule:
    jurisdiction: str  # "EU", "GB", "CH", "US-TX"...
    authority: str | Promise  # whom to tell ("" for the people affected)
    hours: int | None  # None: no fixed deadline
    wording: str | Promise  # what the law says of the time
    source: str
    in_force_from: date
    in_force_until: date | None = None
    # People affected from which the authority must be told (US states), else always.
    threshold: int = 0
    # The figures of this rule the reference notes do not source: for counsel.
    to_check: tuple[str | Promise, ...] = ()


US_UNSOURCED = (CHECK_DEADLINE, CHECK_THRESHOLD, CHECK_IN_FORCE, CHECK_START, CHECK_SOURCE)
# The reference notes give Florida's 30 days (billing-support-breach-notes.md), nothing
# of Texas or Colorado, and "thresholds such as 500 residents" of no state in particular.
RULES: tuple[Rule, ...] = (
    Rule("EU", _("the lead supervisory authority"), 72, _("within 72 hours of awareness"),
         "GDPR art. 33(1)", date(2018, 5, 25)),
    Rule("GB", _("the Information Commissioner's Office (ICO)"), 72,
         _("within 72 hours of awareness"), "UK GDPR art. 33(1)", date(2021, 1, 1)),
    Rule("CH", _("the Federal Data Protection and Information Commissioner (FDPIC)"), None,
         _("as soon as possible"), "FADP art. 24(1)", date(2023, 9, 1)),
    Rule("US-TX", _("the Texas Attorney General"), 60 * 24, _("within 60 days"),
         "Tex. Bus. & Com. Code 521.053(i)", date(2020, 1, 1), date(2023, 9, 1), threshold=250,
         to_check=US_UNSOURCED),
    Rule("US-TX", _("the Texas Attorney General"), 30 * 24, _("within 30 days"),
         "Tex. Bus. & Com. Code 521.053(i)", date(2023, 9, 1), threshold=250,
         to_check=US_UNSOURCED),
    Rule("US-FL", _("the Florida Department of Legal Affairs"), 30 * 24, _("within 30 days"),
         "Fla. Stat. 501.171(3)", date(2014, 7, 1), threshold=500,
         to_check=(CHECK_THRESHOLD, CHECK_IN_FORCE, CHECK_START, CHECK_SOURCE)),
    Rule("US-CO", _("the Colorado Attorney General"), 30 * 24, _("within 30 days"),
         "C.R.S. 6-1-716(2)(f)", date(2018, 9, 1), threshold=500, to_check=US_UNSOURCED),
)  # fmt: skip
JURISDICTIONS = frozenset(rule.jurisdiction for rule in RULES)
# Tidings as processor (art. 33(2)) and as controller to the people (art. 34).
WITHOUT_UNDUE_DELAY = _("without undue delay")
# Where the law sets no time, the clock follows the policy's promise (P33).
POLICY_HOURS = 72
# The steps of an obligation's clock, as fractions of its time (numerator, denominator):
# the last is its deadline, missed.
ESCALATION_STEPS = ((1, 3), (2, 3), (5, 6), (1, 1))
# The earliest any obligation's clock can reach its first step.
FIRST_STEP = (
    timedelta(hours=min([POLICY_HOURS, *(rule.hours for rule in RULES if rule.hours)]))
    * ESCALATION_STEPS[0][0]
    / ESCALATION_STEPS[0][1]
)
# The countries of the European Economic Area (ISO 3166; "EL" is Greece's VAT prefix,
# as a billing identity may hold it): one lead authority under the GDPR.
EEA = frozenset((
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "EL", "ES", "FI", "FR", "GR", "HR", "HU",
    "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
    "IS", "LI", "NO",
))  # fmt: skip


def rule_in_force(jurisdiction: str, when: datetime) -> Rule | None:
    day = when.date()
    for rule in RULES:
        ends = rule.in_force_until
        if (
            rule.jurisdiction == jurisdiction
            and rule.in_force_from <= day
            and (ends is None or day < ends)
        ):
            return rule
    return None


def operator_jurisdiction() -> str:
    country = settings.OPERATOR["country"]
    if country in JURISDICTIONS:
        return str(country)
    return "EU"  # the EEA's, and the default data location's


def jurisdiction_of(country: str) -> str | None:
    """The jurisdiction of the rule table a country (or a US state: "US-TX") is in."""
    if country in EEA:
        return "EU"
    return country if country in JURISDICTIONS else None


def residents(scope: Scope | None) -> dict[str, int]:
    """The people whose data Tidings controls (customers' users) per jurisdiction of the
    table, from the scope's countries; "" those of no known country."""
    found: dict[str, int] = {}
    for country, counts in (scope.per_country if scope else {}).items():
        where = jurisdiction_of(country) if country else ""
        if where is not None and counts.get("users"):
            found[where] = found.get(where, 0) + counts["users"]
    return found


def countries_without_rule(scope: Scope | None) -> dict[str, int]:
    """The countries of customers' users touched that no rule of the table covers (a
    "US" without its state, say): for staff to weigh."""
    found = {}
    for country, counts in (scope.per_country if scope else {}).items():
        if country and jurisdiction_of(country) is None and counts.get("users"):
            found[country] = counts["users"]
    return found


def jurisdictions(scope: Scope | None = None) -> list[str]:
    """The operator's own, those where the scope found people, the configured ones."""
    own = operator_jurisdiction()
    found = [j for j in residents(scope) if j and j != own]
    extra = [j for j in settings.BREACHES["jurisdictions"] if j != own]
    return [own, *dict.fromkeys(sorted(found) + extra)]


@dataclass(frozen=True)
class Obligation:
    key: str  # stable: "authority:EU", "processor:12", "controller:12"
    recipient: str
    wording: str
    source: str
    due: datetime | None  # None: no fixed deadline
    met_at: datetime | None
    # The deadline the clock escalates on: `due`, else the policy's 72 hours.
    target: datetime
    condition: str = ""
    # False when the scope is known to stay below the rule's threshold.
    applies: bool = True
    to_check: tuple[str, ...] = ()

    def overdue(self, now: datetime) -> bool:
        return self.met_at is None and self.due is not None and now > self.due

    @property
    def open(self) -> bool:
        return self.met_at is None and self.applies

    def step(self, aware_at: datetime, now: datetime) -> int:
        """How many steps of ESCALATION_STEPS its clock has reached at `now`."""
        span, elapsed = self.target - aware_at, now - aware_at
        return sum(1 for num, den in ESCALATION_STEPS if elapsed * den >= span * num)

    def step_hours(self, aware_at: datetime, step: int) -> int:
        """The hours from awareness at which `step` (1-based) comes."""
        num, den = ESCALATION_STEPS[step - 1]
        return int((self.target - aware_at) * num / den / timedelta(hours=1))


def _authority(
    incident: Incident, code: str, people: dict[str, int], filings: list[Filing]
) -> Obligation | None:
    rule = rule_in_force(code, incident.aware_at)
    if rule is None:
        return None
    own = code == operator_jurisdiction()
    name = settings.OPERATOR["authority_name"] if own else str(rule.authority)
    met = next(
        (f.filed_at for f in filings if f.jurisdiction == code or (own and not f.jurisdiction)),
        None,
    )
    condition, applies = "", True
    if rule.threshold:
        here, unknown = people.get(code, 0), people.get("", 0)
        condition = str(
            _(
                "if %(n)s or more of its residents are affected: %(here)s known here, "
                "%(unknown)s of unknown country"
            )
            % {"n": rule.threshold, "here": here, "unknown": unknown}
        )
        applies = here + unknown >= rule.threshold
    due = incident.aware_at + timedelta(hours=rule.hours) if rule.hours else None
    return Obligation(
        key=f"authority:{code}",
        recipient=f"{name} ({code})",
        wording=str(rule.wording),
        source=rule.source,
        due=due,
        met_at=met,
        target=due or incident.aware_at + timedelta(hours=POLICY_HOURS),
        condition=condition,
        applies=applies,
        to_check=tuple(str(item) for item in rule.to_check),
    )


def obligations_for(incident: Incident, scope: Scope | None) -> list[Obligation]:
    """One obligation per recipient, with its deadline and whether it is met. An
    incident not qualified yet has the operator's authority's: its clock runs."""
    if incident.drill or incident.status == Incident.Status.NOT_A_BREACH:
        return []
    filings = list(incident.filings.order_by("phase"))
    if incident.status == Incident.Status.OPEN:
        own = _authority(incident, operator_jurisdiction(), {}, filings)
        return [own] if own else []
    people = residents(scope)
    found = [
        o for code in jurisdictions(scope) if (o := _authority(incident, code, people, filings))
    ]
    for row in scope.per_account if scope else []:
        for role, touched, recipient, source in (
            (Notice.Role.PROCESSOR, row.get("processor"),
             _("account #%(n)s, controller of its contacts' data"), "GDPR art. 33(2)"),
            (Notice.Role.CONTROLLER, row["users"],
             _("the users of account #%(n)s, whose data it is"), "GDPR art. 34"),
        ):  # fmt: skip
            if not touched:
                continue
            found.append(
                Obligation(
                    key=f"{role}:{row['account']}",
                    recipient=str(recipient) % {"n": row["account"]},
                    wording=str(WITHOUT_UNDUE_DELAY),
                    source=source,
                    due=None,
                    met_at=_everyone_told_at(incident, role, row["account"]),
                    target=incident.aware_at + timedelta(hours=POLICY_HOURS),
                )
            )
    return found


def _everyone_told_at(incident: Incident, role: str, account: int) -> datetime | None:
    """When the last user of `account` was told in `role`, once none is left to tell."""
    told = Notice.objects.filter(incident=incident, role=role, account_ref=account)
    if breach_scope.users_told(account).exclude(pk__in=told.values("user_ref")).exists():
        return None
    return told.order_by("-sent_at").values_list("sent_at", flat=True).first()
