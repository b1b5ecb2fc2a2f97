"""Who must be told of a breach, by when: a dated rule table turned into one obligation
per recipient (P33).

1. `RULES` is data: per jurisdiction, whom the law says to tell, the deadline (hours
   from awareness, or none where the law says "as soon as possible" or "without undue
   delay"), the text it comes from and the day it came into force. The rule in force
   when the operator became aware is the one that applies.
2. The jurisdictions are the operator's own (TIDINGS_OPERATOR_COUNTRY: the UK's or
   Switzerland's rules there, the EU's for any other country or none) and those the
   operator names in TIDINGS_BREACH_JURISDICTIONS ("CH,US-TX"): each gives its
   authorities' obligations.
3. The scope gives the rest: each account whose contacts were touched is told as the
   controller of their data (processor to controller, art. 33(2)); the users of each
   account whose own data was touched are told (art. 34, promised to everyone).
4. An obligation is met by the register's own records: a filing to that authority, the
   notices to that account. The US states' rules are kept as data (deadlines counted from
   awareness here; check the statute's own starting point with counsel).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from tidings.breaches.models import Incident, Notice, Scope


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


RULES: tuple[Rule, ...] = (
    Rule("EU", _("the lead supervisory authority"), 72, _("within 72 hours of awareness"),
         "GDPR art. 33(1)", date(2018, 5, 25)),
    Rule("GB", _("the Information Commissioner's Office (ICO)"), 72,
         _("within 72 hours of awareness"), "UK GDPR art. 33(1)", date(2021, 1, 1)),
    Rule("CH", _("the Federal Data Protection and Information Commissioner (FDPIC)"), None,
         _("as soon as possible"), "FADP art. 24(1)", date(2023, 9, 1)),
    Rule("US-TX", _("the Texas Attorney General"), 60 * 24, _("within 60 days"),
         "Tex. Bus. & Com. Code 521.053(i)", date(2020, 1, 1), date(2023, 9, 1), threshold=250),
    Rule("US-TX", _("the Texas Attorney General"), 30 * 24, _("within 30 days"),
         "Tex. Bus. & Com. Code 521.053(i)", date(2023, 9, 1), threshold=250),
    Rule("US-FL", _("the Florida Department of Legal Affairs"), 30 * 24, _("within 30 days"),
         "Fla. Stat. 501.171(3)", date(2014, 7, 1), threshold=500),
    Rule("US-CO", _("the Colorado Attorney General"), 30 * 24, _("within 30 days"),
         "C.R.S. 6-1-716(2)(f)", date(2018, 9, 1), threshold=500),
)  # fmt: skip
JURISDICTIONS = frozenset(rule.jurisdiction for rule in RULES)
# Tidings as processor (art. 33(2)) and as controller to the people (art. 34).
WITHOUT_UNDUE_DELAY = _("without undue delay")


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


def jurisdictions() -> list[str]:
    extra = [j for j in settings.BREACHES["jurisdictions"] if j != operator_jurisdiction()]
    return [operator_jurisdiction(), *dict.fromkeys(extra)]


@dataclass(frozen=True)
class Obligation:
    recipient: str
    wording: str
    source: str
    due: datetime | None  # None: no fixed deadline
    met_at: datetime | None
    condition: str = ""

    def overdue(self, now: datetime) -> bool:
        return self.met_at is None and self.due is not None and now > self.due


def obligations_for(incident: Incident, scope: Scope | None) -> list[Obligation]:
    """One obligation per recipient, with its deadline and whether it is met."""
    if incident.status != Incident.Status.BREACH or incident.drill:
        return []
    people = (scope.customers_affected + scope.contacts_affected) if scope else 0
    filings = list(incident.filings.order_by("phase"))
    found = []
    for code in jurisdictions():
        rule = rule_in_force(code, incident.aware_at)
        if rule is None:
            continue
        own = code == operator_jurisdiction()
        name = settings.OPERATOR["authority_name"] if own else str(rule.authority)
        met = next((f.filed_at for f in filings if own or f.authority == name), None)
        condition = ""
        if rule.threshold:
            condition = str(
                _("if %(n)s or more of the state's residents are affected (%(all)s in all)")
                % {"n": rule.threshold, "all": people}
            )
        found.append(
            Obligation(
                recipient=f"{name} ({code})",
                wording=str(rule.wording),
                source=rule.source,
                due=incident.aware_at + timedelta(hours=rule.hours) if rule.hours else None,
                met_at=met,
                condition=condition,
            )
        )
    for row in scope.per_account if scope else []:
        for role, touched, recipient, source in (
            (Notice.Role.PROCESSOR, row.get("processor"),
             _("account #%(n)s, controller of its contacts' data"), "GDPR art. 33(2)"),
            (Notice.Role.CONTROLLER, row["users"],
             _("the users of account #%(n)s, whose data it is"), "GDPR art. 34"),
        ):  # fmt: skip
            if not touched:
                continue
            told = Notice.objects.filter(incident=incident, role=role, account_ref=row["account"])
            first = told.order_by("sent_at").values_list("sent_at", flat=True).first()
            found.append(
                Obligation(
                    recipient=str(recipient) % {"n": row["account"]},
                    wording=str(WITHOUT_UNDUE_DELAY),
                    source=source,
                    due=None,
                    met_at=first,
                )
            )
    return found
