"""A breach's severity by ENISA's method ("Recommendations for a methodology of the
assessment of severity of personal data breaches", 2013): SE = DPC x EI + CB.

1. DPC, the data processing context (1 simple, 2 behavioural, 3 financial, 4
   sensitive), is proposed from the scope: the highest `data_class` of the data-map
   entries with rows touched, or 4 when staff said special categories are involved.
2. EI, the ease of identification (0.25 negligible to 1 maximum): every table of the map
   is tied to a named account or an address, so it is 1, unless the data was
   unintelligible (encrypted or hashed, the key safe): 0.25.
3. CB, the circumstances, from the incident's nature: loss of confidentiality (0.25 to
   known recipients, 0.5 to unknown ones), of integrity and of availability (0.25 when
   the data can be restored, 0.5 when not), malicious intent (0.5).
4. The level: below 2 low, below 3 medium, below 4 high, else very high.

This is only a proposal: a named person sets the figures and the level and says why
(services.assess_severity); nothing here is applied by itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _

from tidings.breaches.models import Assessment, Incident, Scope
from tidings.core.datamap import DataClass
from tidings.privacy import breach_scope

Level = Assessment.Level

DPC_OF_CLASS = {
    DataClass.SIMPLE: Decimal(1),
    DataClass.BEHAVIOURAL: Decimal(2),
    DataClass.FINANCIAL: Decimal(3),
    DataClass.SENSITIVE: Decimal(4),
}
# The figures the method allows, as the form offers them.
DPC_VALUES = (Decimal(1), Decimal(2), Decimal(3), Decimal(4))
EI_VALUES = (Decimal("0.25"), Decimal("0.5"), Decimal("0.75"), Decimal(1))
CB_VALUES = (Decimal(0), Decimal("0.25"), Decimal("0.5"))
MALICIOUS_VALUES = (Decimal(0), Decimal("0.5"))
NONE, PARTIAL, FULL = Decimal(0), Decimal("0.25"), Decimal("0.5")


def level_of(score: Decimal) -> str:
    """The method's level of a score: < 2 low, < 3 medium, < 4 high, else very high."""
    if score < 2:
        return Level.LOW
    if score < 3:
        return Level.MEDIUM
    if score < 4:
        return Level.HIGH
    return Level.VERY_HIGH


def score_of(
    dpc: Decimal, ei: Decimal, confidentiality: Decimal, integrity: Decimal,
    availability: Decimal, malicious: Decimal,
) -> Decimal:  # fmt: skip
    return dpc * ei + confidentiality + integrity + availability + malicious


@dataclass
class Proposal:
    dpc: Decimal
    ei: Decimal
    confidentiality: Decimal
    integrity: Decimal
    availability: Decimal
    malicious: Decimal
    # Why each figure is what it is, in the officer's words.
    why: list[str] = field(default_factory=list)

    @property
    def score(self) -> Decimal:
        return score_of(
            self.dpc, self.ei, self.confidentiality, self.integrity, self.availability,
            self.malicious,
        )  # fmt: skip

    @property
    def level(self) -> str:
        return level_of(self.score)

    @property
    def level_label(self) -> str:
        return str(Level(self.level).label)

    def as_dict(self) -> dict[str, Any]:
        figures = {
            name: str(getattr(self, name))
            for name in ("dpc", "ei", "confidentiality", "integrity", "availability")
        }
        return {
            **figures,
            "malicious": str(self.malicious),
            "score": str(self.score),
            "level": self.level,
            "why": self.why,
        }


def _classes(scope: Scope) -> set[DataClass]:
    touched = {label for row in scope.per_account for label, n in row["records"].items() if n}
    entries = [breach_scope.entry_by_label(label) for label in sorted(touched)]
    return {DataClass(e.data_class) for e in entries if e is not None}


def propose(incident: Incident, scope: Scope) -> Proposal:
    """The figures the method gives from what the register knows (the scope's data and
    the incident's nature), with why."""
    why = []
    classes = _classes(scope)
    if scope.special_categories:
        dpc = DPC_OF_CLASS[DataClass.SENSITIVE]
        why.append(_("DPC 4: special categories of data are involved (said at scoping)."))
    else:
        dpc = max((DPC_OF_CLASS[c] for c in classes), default=DPC_OF_CLASS[DataClass.SIMPLE])
        names = ", ".join(sorted(str(_class_label(c)) for c in classes)) or _("simple")
        why.append(_("DPC %(dpc)s: the data touched is %(names)s.") % {"dpc": dpc, "names": names})
    if incident.unintelligible:
        ei = EI_VALUES[0]
        why.append(_("EI 0.25: the data was unintelligible (encrypted or hashed, the key safe)."))
    else:
        ei = EI_VALUES[-1]
        why.append(_("EI 1: every table touched names an account or an address."))
    confidentiality = integrity = availability = NONE
    if incident.confidentiality:
        confidentiality = PARTIAL if incident.known_recipients else FULL
        why.append(
            _("Confidentiality +0.25: disclosed to known recipients only.")
            if incident.known_recipients
            else _("Confidentiality +0.5: disclosed to unknown recipients.")
        )
    if incident.integrity:
        integrity = PARTIAL if incident.recoverable else FULL
        why.append(
            _("Integrity +0.25: the altered data can be restored.")
            if incident.recoverable
            else _("Integrity +0.5: the altered data cannot be restored.")
        )
    if incident.availability:
        availability = PARTIAL if incident.recoverable else FULL
        why.append(
            _("Availability +0.25: the data can be restored.")
            if incident.recoverable
            else _("Availability +0.5: the data is lost for good.")
        )
    malicious = FULL if incident.malicious else NONE
    if incident.malicious:
        why.append(_("Malicious intent +0.5."))
    return Proposal(dpc, ei, confidentiality, integrity, availability, malicious, why)


def _class_label(data_class: DataClass) -> str:
    labels = {
        DataClass.SIMPLE: _("simple"),
        DataClass.BEHAVIOURAL: _("behavioural"),
        DataClass.FINANCIAL: _("financial"),
        DataClass.SENSITIVE: _("sensitive"),
    }
    return labels[data_class]
