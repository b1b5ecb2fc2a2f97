"""Segments: saved filters over an account's contacts, built from safe rules.

The customer never writes SQL. A segment's rules are JSON:

    {"match": "all" | "any",
     "conditions": [{"field": "attribute", "key": "city", "op": "eq", "value": "Ghent"}, ...]}

Each condition is checked against a whitelist (`FIELDS`: which operators each field
takes, whether it needs a key, what its value must be) and compiled to a Django `Q`;
an unknown field or operator, or a value of the wrong kind, raises `SegmentError` with
a message naming the condition, and nothing is saved.

Engagement fields ("opened", "clicked": per-contact tracking events, kept
TIDINGS_TRACKING_DAYS) are profiling fields (`Field(..., profiling=True)`): a segment that
uses any of them leaves out the contacts who objected to profiling
(`Contact.allow_profiling`, P18/P21), at once and wherever the segment is evaluated
(counts, previews, the sending engine).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from tidings.accounts.models import Account
from tidings.audience import attribute_types, counters
from tidings.audience.lookups import ATTRIBUTE_KEY
from tidings.audience.models import Contact, MailingList, Segment, Subscription
from tidings.audience.selectors import attribute_equals, typed_alternatives
from tidings.audience.services import AudienceError

MAX_CONDITIONS = 50
MAX_VALUES = 500
MAX_TEXT = 500
OPS = ("eq", "neq", "contains", "gt", "lt", "before", "after", "exists", "in")


class SegmentError(AudienceError):
    """The rules cannot be used; the message names the condition and the fault."""


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Any
    key: str = ""


# A compiler turns a checked condition into a Q for the account's contacts.
Compiler = Callable[[Account, Condition], Q]


@dataclass(frozen=True)
class Field:
    name: str
    label: str | Promise
    ops: tuple[str, ...]
    compile: Compiler
    # "list" (a list uuid), "attribute" (a key name), or "" for none.
    key: str = ""
    # Uses what a contact did (opens, clicks): honours allow_profiling.
    profiling: bool = False


FIELDS: dict[str, Field] = {}


def register_field(field: Field) -> Field:
    FIELDS[field.name] = field
    return field


# --- checking ----------------------------------------------------------------------


def validate_rules(account: Account, rules: Any) -> dict[str, Any]:
    """The rules in their stored form, or SegmentError. Lists named in the rules must be
    the account's own."""
    if not isinstance(rules, dict):
        raise SegmentError(_("Rules must be an object with “match” and “conditions”."))
    unknown = set(rules) - {"match", "conditions"}
    if unknown:
        raise SegmentError(
            _("Unknown part of the rules: %(join)s.") % {"join": ", ".join(sorted(unknown))}
        )
    match = rules.get("match", "all")
    if match not in ("all", "any"):
        raise SegmentError(_("“match” must be “all” or “any”."))
    conditions = rules.get("conditions", [])
    if not isinstance(conditions, list):
        raise SegmentError(_("“conditions” must be a list."))
    if len(conditions) > MAX_CONDITIONS:
        raise SegmentError(
            _("A segment can have at most %(MAX_CONDITIONS)s conditions.")
            % {"MAX_CONDITIONS": MAX_CONDITIONS}
        )
    checked = []
    for number, raw in enumerate(conditions, start=1):
        try:
            condition = _check(account, raw)
        except SegmentError as error:
            raise SegmentError(
                _("Condition %(number)s: %(error)s") % {"number": number, "error": error}
            ) from None
        checked.append(
            {"field": condition.field, "op": condition.op, "value": condition.value}
            | ({"key": condition.key} if condition.key else {})
        )
    return {"match": match, "conditions": checked}


def _check(account: Account, raw: Any) -> Condition:
    if not isinstance(raw, dict):
        raise SegmentError(_("each condition must be an object."))
    unknown = set(raw) - {"field", "key", "op", "value"}
    if unknown:
        raise SegmentError(
            _("unknown part %(join)s.") % {"join": ", ".join(sorted(map(str, unknown)))}
        )
    name, op = raw.get("field"), raw.get("op")
    field = FIELDS.get(name) if isinstance(name, str) else None
    if field is None:
        raise SegmentError(
            _("unknown field %(name)s; use one of %(join)s.")
            % {"name": repr(name), "join": ", ".join(sorted(FIELDS))}
        )
    if op not in field.ops:
        raise SegmentError(
            _("%(label)s cannot use the operator %(op)s; use one of %(join)s.")
            % {"label": field.label, "op": repr(op), "join": ", ".join(field.ops)}
        )
    key = raw.get("key", "")
    key = key.strip() if isinstance(key, str) else key
    if field.key == "attribute":
        if not isinstance(key, str) or not ATTRIBUTE_KEY.match(key) or "__" in key:
            raise SegmentError(_("%(key)s is not an attribute name.") % {"key": repr(key)})
        # A marketer types the column's header ("Âge") for the attribute the import
        # named from it ("age").
        key = attribute_types.declared_key(account, key)
    elif field.key == "list":
        key = _list_uuid(account, key)
    elif key:
        raise SegmentError(_("%(label)s takes no key.") % {"label": field.label})
    # A declared attribute is compared as its type: the operators that fit it, and the
    # value in its typed form (audience.attribute_types).
    op = str(op)  # one of field.ops, checked above
    kind = attribute_types.kind_of(account, key) if field.key == "attribute" else None
    # "greater than" a date is "after" it (a rule saved before the attribute was declared
    # keeps its meaning), and "before" a number is "less than" it.
    if kind is not None:
        op = _SAME_OPERATOR.get((kind, op), op)
    if kind is not None and op not in attribute_types.OPS_BY_KIND[kind]:
        raise SegmentError(
            _("the attribute “%(key)s” is a %(kind)s: use one of %(ops)s.")
            % {
                "key": key,
                "kind": attribute_types.KIND_LABELS[kind],
                "ops": ", ".join(attribute_types.OPS_BY_KIND[kind]),
            }
        )
    value = _check_value(account, field, op, raw.get("value"), kind)
    return Condition(field.name, op, value, key)


_SAME_OPERATOR: dict[tuple[str, str], str] = {
    (attribute_types.DATE, "gt"): "after",
    (attribute_types.DATE, "lt"): "before",
    (attribute_types.NUMBER, "after"): "gt",
    (attribute_types.NUMBER, "before"): "lt",
}


def _check_value(
    account: Account, field: Field, op: str, value: Any, kind: str | None = None
) -> Any:
    if op == "exists":
        if value in (None, ""):
            return True
        if not isinstance(value, bool):
            raise SegmentError(_("“exists” takes true or false."))
        return value
    if op == "in":
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not value:
            raise SegmentError(_("“in” takes a non-empty list of values."))
        if len(value) > MAX_VALUES:
            raise SegmentError(
                _("“in” takes at most %(MAX_VALUES)s values.") % {"MAX_VALUES": MAX_VALUES}
            )
        return [_one_value(account, field, "eq", v, kind) for v in value]
    return _one_value(account, field, op, value, kind)


def _one_value(account: Account, field: Field, op: str, value: Any, kind: str | None) -> Any:
    if kind is not None:
        return _typed_value(kind, value)
    if op in ("before", "after"):
        return _date_text(value)
    if field.name == "status":
        if value not in Contact.Status.values:
            raise SegmentError(
                _("%(value)s is not a status; use %(join)s.")
                % {"value": repr(value), "join": ", ".join(Contact.Status)}
            )
        return value
    if field.name == "list_status":
        if value not in Subscription.Status.values:
            raise SegmentError(
                _("%(value)s is not a subscription status; use %(join)s.")
                % {"value": repr(value), "join": ", ".join(Subscription.Status)}
            )
        return value
    if field.name == "list":
        return _list_uuid(account, value)
    if field.name == "attribute" and op in ("gt", "lt"):
        if isinstance(value, str):
            numbers = [v for v in typed_alternatives(value)[1:] if not isinstance(v, bool)]
            value = numbers[0] if numbers else value
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise SegmentError(_("“gt” and “lt” compare with a number or a text."))
        return value
    if isinstance(value, bool) and field.name == "attribute" and op in ("eq", "neq"):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and field.name == "attribute":
        return value
    if not isinstance(value, str) or not value.strip():
        raise SegmentError(_("%(label)s needs a text value.") % {"label": field.label})
    if len(value) > MAX_TEXT:
        raise SegmentError(
            _("values are at most %(MAX_TEXT)s characters.") % {"MAX_TEXT": MAX_TEXT}
        )
    return value.strip()


def _typed_value(kind: str, value: Any) -> Any:
    """A declared attribute's value in the form its contacts' values are stored in."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise SegmentError(_("the condition needs a value."))
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise SegmentError(
            _("values are at most %(MAX_TEXT)s characters.") % {"MAX_TEXT": MAX_TEXT}
        )
    try:
        typed = attribute_types.convert(kind, value.strip() if isinstance(value, str) else value)
    except attribute_types.AttributeValueError as error:
        raise SegmentError(f"{error}.") from None
    return typed


def _date_text(value: Any) -> str:
    """An ISO date or date-time, kept as text in the rules."""
    if not isinstance(value, str):
        raise SegmentError(_("“before” and “after” take a date like 2025-01-31."))
    text = value.strip()
    try:
        if len(text) == 10:
            date.fromisoformat(text)
        else:
            datetime.fromisoformat(text)
    except ValueError:
        raise SegmentError(
            _("%(text)s is not a date like 2025-01-31.") % {"text": repr(text[:40])}
        ) from None
    return text


def _list_uuid(account: Account, value: Any) -> str:
    try:
        key = uuid.UUID(str(value))
    except ValueError:
        raise SegmentError(
            _("%(str)s is not one of your lists.") % {"str": repr(str(value)[:40])}
        ) from None
    if not MailingList.objects.filter(account=account, uuid=key).exists():
        raise SegmentError(_("%(str)s is not one of your lists.") % {"str": repr(str(value)[:40])})
    return key.hex


# --- compiling ---------------------------------------------------------------------


def _text(column: str) -> Compiler:
    def compile(account: Account, c: Condition) -> Q:
        value = c.value
        if column == "email":
            value = [v.lower() for v in value] if isinstance(value, list) else value.lower()
        if c.op == "exists":
            q = ~Q(**{column: ""})
            return q if c.value else ~q
        lookup = {"eq": "iexact", "neq": "iexact", "contains": "icontains", "in": "in"}[c.op]
        if column == "email" and lookup in ("iexact", "icontains"):
            lookup = lookup[1:]  # stored lower-case: a plain (indexable) comparison
        q = Q(**{f"{column}__{lookup}": value})
        return ~q if c.op == "neq" else q

    return compile


def _status(account: Account, c: Condition) -> Q:
    if c.op == "in":
        return Q(status__in=c.value)
    q = Q(status=c.value)
    return ~q if c.op == "neq" else q


def _tag(account: Account, c: Condition) -> Q:
    if c.op == "exists":
        q = ~Q(tags=[])
        return q if c.value else ~q
    values = c.value if c.op == "in" else [c.value]
    q = Q()
    for tag in values:
        q |= Q(tags__has_element=tag)
    return ~q if c.op == "neq" else q


def _membership(account: Account, list_hex: str, statuses: Sequence[str]) -> Exists:
    # The list's id, looked up first (within the account): with the id in the query,
    # PostgreSQL knows from its statistics how many subscriptions the list has and picks
    # a hash semi-join, instead of one index probe per contact.
    list_id = (
        MailingList.objects.filter(account=account, uuid=uuid.UUID(list_hex))
        .values_list("pk", flat=True)
        .first()
    )
    return Exists(
        Subscription.objects.filter(
            contact=OuterRef("pk"), mailing_list_id=list_id, status__in=statuses
        )
    )


def _list(account: Account, c: Condition) -> Q:
    """On the list: a confirmed subscription."""
    confirmed = [Subscription.Status.CONFIRMED]
    values = c.value if c.op == "in" else [c.value]
    q = Q()
    for list_hex in values:
        q |= Q(_membership(account, list_hex, confirmed))
    return ~q if c.op == "neq" else q


def _list_status(account: Account, c: Condition) -> Q:
    statuses = c.value if c.op == "in" else [c.value]
    q = Q(_membership(account, c.key, statuses))
    return ~q if c.op == "neq" else q


def _moment(text: str, *, end_of_day: bool) -> datetime:
    if len(text) == 10:
        day = date.fromisoformat(text)
        moment = datetime.combine(day, time.max if end_of_day else time.min)
    else:
        moment = datetime.fromisoformat(text)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def _created_at(account: Account, c: Condition) -> Q:
    if c.op == "before":
        return Q(created_at__lt=_moment(c.value, end_of_day=False))
    return Q(created_at__gt=_moment(c.value, end_of_day=True))


# Opens and clicks are facts the delivery layer records (per-contact tracking events).
# It tells segments how to find them (`register_engagement`, from its AppConfig.ready()),
# so the rule below reads them without domain importing delivery, and without a second
# copy of anyone's events.
EngagementSource = Callable[[Account, str, datetime | None, datetime | None], QuerySet[Any]]
_engagement: list[EngagementSource] = []


def register_engagement(source: EngagementSource) -> None:
    """`source(account, kind, before, after)`: the events of `kind` ("open", "click") of
    the account's mail, between those moments when given, with a `contact_id` column."""
    _engagement[:] = [source]


def _engagement_events(
    account: Account, kind: str, *, before: datetime | None = None, after: datetime | None = None
) -> QuerySet[Any]:
    if not _engagement:
        raise SegmentError(_("Opens and clicks are not recorded on this installation."))
    return _engagement[0](account, kind, before, after)


def _engaged(kind: str) -> Compiler:
    """Opened or clicked a mail of the account (per-contact tracking events)."""

    def compile(account: Account, c: Condition) -> Q:
        if c.op == "exists":
            events = _engagement_events(account, kind)
        elif c.op == "before":
            events = _engagement_events(account, kind, before=_moment(c.value, end_of_day=False))
        else:
            events = _engagement_events(account, kind, after=_moment(c.value, end_of_day=True))
        q = Q(Exists(events.filter(contact_id=OuterRef("pk"))))
        return q if c.op != "exists" or c.value else ~q

    return compile


def _attribute(account: Account, c: Condition) -> Q:
    if c.op == "exists":
        q = Q(attributes__has_key=c.key)
        return q if c.value else ~q
    if c.op in ("eq", "neq", "in"):
        values = c.value if c.op == "in" else [c.value]
        q = Q()
        for value in values:
            q |= attribute_equals(c.key, value)
        return ~q if c.op == "neq" else q
    if c.op == "contains":
        text = KeyTextTransform(c.key, "attributes")
        icontains = text.get_lookup("icontains")
        assert icontains is not None
        return Q(icontains(text, str(c.value)))
    # gt, lt, before, after: numbers by value, ISO dates (and other text) as text.
    lookup = "attribute_gt" if c.op in ("gt", "after") else "attribute_lt"
    return Q(**{f"attributes__{lookup}": (c.key, c.value)})


for _field in (
    Field("email", _("Email"), ("eq", "neq", "contains", "in"), _text("email")),
    Field("name", _("Name"), ("eq", "neq", "contains", "exists"), _text("name")),
    Field("status", _("Status"), ("eq", "neq", "in"), _status),
    Field("tag", _("Tag"), ("eq", "neq", "in", "exists"), _tag),
    Field("list", _("List"), ("eq", "neq", "in"), _list),
    Field("list_status", _("Status on a list"), ("eq", "neq", "in"), _list_status, key="list"),
    Field("created_at", _("Added"), ("before", "after"), _created_at),
    Field(
        "attribute",
        _("Attribute"),
        ("eq", "neq", "contains", "gt", "lt", "before", "after", "exists", "in"),
        _attribute,
        key="attribute",
    ),
    Field(
        "opened",
        _("Opened a mail"),
        ("after", "before", "exists"),
        _engaged("open"),
        profiling=True,
    ),
    Field(
        "clicked",
        _("Clicked a link in a mail"),
        ("after", "before", "exists"),
        _engaged("click"),
        profiling=True,
    ),
):
    register_field(_field)


def compile_rules(account: Account, rules: dict[str, Any]) -> tuple[Q, bool]:
    """The Q of checked rules, and whether they use a profiling field."""
    checked = validate_rules(account, rules)
    conditions = [
        Condition(c["field"], c["op"], c["value"], c.get("key", "")) for c in checked["conditions"]
    ]
    parts = [FIELDS[c.field].compile(account, c) for c in conditions]
    q = Q()
    for part in parts:
        q = q | part if checked["match"] == "any" else q & part
    profiling = any(FIELDS[c.field].profiling for c in conditions)
    return q, profiling


def matching(account: Account, rules: dict[str, Any]) -> QuerySet[Contact]:
    """The account's contacts that match `rules`, whatever their status (but not those
    whose processing is restricted)."""
    q, profiling = compile_rules(account, rules)
    # A restricted contact is in no segment (P18): their data is only kept.
    contacts = Contact.objects.filter(account=account, restricted_at__isnull=True).filter(q)
    if profiling:
        contacts = contacts.filter(allow_profiling=True)
    return contacts


def size(account: Account, rules: dict[str, Any]) -> int:
    """How many contacts match: the number the segment editor shows as it changes.

    "Everyone on list X", the most common segment, is the list's counter of confirmed
    subscriptions (audience.counters, kept by the database in the transaction of every
    change) less its few restricted contacts: the same number as counting `matching`,
    without reading a million subscriptions."""
    checked = validate_rules(account, rules)
    only = checked["conditions"][0] if len(checked["conditions"]) == 1 else None
    if only is not None and only["field"] == "list" and only["op"] == "eq":
        list_id = (
            MailingList.objects.filter(account=account, uuid=uuid.UUID(only["value"]))
            .values_list("pk", flat=True)
            .get()
        )
        confirmed = Subscription.Status.CONFIRMED
        # The few restricted contacts (an index of their own) are taken off the count.
        restricted = Subscription.objects.filter(
            mailing_list_id=list_id,
            status=confirmed,
            contact__in=Contact.objects.filter(account=account, restricted_at__isnull=False),
        )
        return counters.size(list_id, confirmed) - restricted.count()
    return matching(account, rules).count()


def contacts_in(segment: Segment) -> QuerySet[Contact]:
    """The contacts of the segment's account that match it, whatever their status: the
    sending engine keeps only the mailable ones."""
    return matching(segment.account, segment.rules or {})


def save_segment(
    account: Account, *, segment: Segment | None = None, name: str, rules: Any
) -> Segment:
    """Create or change a segment; the rules are checked first and nothing is saved
    when they are wrong."""
    name = name.strip()
    if not name or len(name) > 200:
        raise SegmentError(_("A segment needs a name of 1 to 200 characters."))
    checked = validate_rules(account, rules)
    if segment is None:
        segment = Segment(account=account)
    elif segment.account_id != account.pk:
        raise SegmentError(_("That segment belongs to another account."))
    segment.name = name
    segment.rules = checked
    segment.save()
    return segment
