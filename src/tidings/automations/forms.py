"""The automations' forms (pages): what a customer types, checked before the service."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from django import forms
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.text import capfirst, format_lazy
from django.utils.translation import gettext_lazy as _

from tidings.accounts.models import Account
from tidings.audience.models import MailingList
from tidings.automations import webhooks
from tidings.automations.models import (
    WEEKDAY_NAMES,
    Automation,
    SplitTest,
    Step,
    WebhookEndpoint,
)
from tidings.automations.services import MAX_WAIT_DAYS
from tidings.campaigns.models import Campaign
from tidings.core.locales import time_zone_choices
from tidings.sending.reports import readable_subject

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

WEEKDAYS = [("", "—"), *((str(n), name) for n, name in enumerate(WEEKDAY_NAMES))]


class Group:
    """The fields some choices use (a trigger's, a step kind's), shown under their
    names, each field once (adding and removing a tag share theirs): the page shows only
    the chosen one's (automations/grouped.js), and all of them without JavaScript."""

    def __init__(self, value: str, label: StrOrPromise, fields: list[forms.BoundField]) -> None:
        self.values, self.label, self.fields = [value], capfirst(str(label)), fields

    @property
    def choices(self) -> str:
        return " ".join(self.values)


class Grouped:
    """A form whose fields depend on one choice: `switch` names the choosing field,
    `common` the fields every choice uses (before the groups), `after` those after."""

    switch: str
    common: tuple[str, ...] = ()
    after: tuple[str, ...] = ()

    @property
    def switch_name(self) -> str:
        """The choosing field's name in the page (with the form's prefix)."""
        return self[self.switch].html_name  # type: ignore[index]

    def common_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.common]  # type: ignore[index]

    def after_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.after]  # type: ignore[index]


def _groups(
    form: forms.Form,
    choices: Sequence[tuple[str, StrOrPromise]],
    fields: dict[Any, tuple[str, ...]],
) -> list[Group]:
    groups: dict[tuple[str, ...], Group] = {}
    for value, label in choices:
        names = tuple(fields.get(value, ()))
        if not names:
            continue
        if names in groups:
            groups[names].values.append(value)
            groups[names].label += " / " + str(label)
        else:
            groups[names] = Group(value, label, [form[name] for name in names])
    return list(groups.values())


class Missing(forms.Widget):
    """In place of a select with nothing to choose from: what is missing and a link to
    where it is made (a new customer met an empty select and no word)."""

    template_name = "automations/_missing.html"

    def __init__(self, text: StrOrPromise, link: StrOrPromise, url: str) -> None:
        super().__init__()
        self.text, self.link, self.url = text, link, url

    def id_for_label(self, id_: str) -> str:
        return ""  # nothing to focus: the label stands over the hint

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        context["widget"].update(text=self.text, link=self.link, url=self.url)
        return context


def _choose_from(
    field: forms.Field, queryset: QuerySet[Any], missing: Missing, required: StrOrPromise
) -> None:
    """`field` chooses from `queryset`; when it is empty, the page shows `missing`
    instead, and the form sent without a choice says `required`."""
    assert isinstance(field, forms.ModelChoiceField)
    field.queryset = queryset
    if not queryset.exists():
        field.widget = missing
        field.help_text = ""
        field.error_messages = {**field.error_messages, "required": required}


class TriggerForm(Grouped, forms.Form):
    """The trigger and its settings (each used by its own trigger only)."""

    trigger = forms.ChoiceField(
        label=_("Contacts enter when"),
        choices=Automation.Trigger.choices,
        initial=Automation.Trigger.JOINED_LIST,
        required=False,
    )
    trigger_tag = forms.CharField(label=_("Tag (a tag added)"), max_length=100, required=False)
    date_attribute = forms.CharField(
        label=_("Date attribute (birthday, renewal…)"), max_length=64, required=False
    )
    date_yearly = forms.BooleanField(label=_("Every year"), required=False, initial=True)
    date_time = forms.TimeField(
        label=_("At (time of day)"),
        required=False,
        initial="09:00",
        help_text=_("In the contact's time zone (attribute time_zone), else the account's."),
    )
    trigger_campaign = forms.ModelChoiceField(
        label=_("Campaign (a click)"), queryset=Campaign.objects.none(), required=False
    )
    trigger_url = forms.CharField(
        label=_("Link (empty: any link)"), max_length=2000, required=False
    )
    event_name = forms.CharField(label=_("Event name (API)"), max_length=100, required=False)
    reentry = forms.BooleanField(
        label=_("Contacts may enter again"),
        required=False,
        help_text=_("Again only after finishing or leaving; otherwise once each."),
    )

    TRIGGER_FIELDS = {
        Automation.Trigger.JOINED_LIST: (),
        Automation.Trigger.TAG_ADDED: ("trigger_tag",),
        Automation.Trigger.DATE: ("date_attribute", "date_yearly", "date_time"),
        Automation.Trigger.CLICKED: ("trigger_campaign", "trigger_url"),
        Automation.Trigger.EVENT: ("event_name",),
    }
    # The field whose value chooses the group shown, and the fields every choice uses.
    switch = "trigger"
    common: tuple[str, ...] = ("trigger",)
    after: tuple[str, ...] = ("reentry",)

    def __init__(self, *args: Any, account: Account, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["trigger_campaign"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = Campaign.objects.filter(account=account).order_by("-created_at")

    def groups(self) -> list[Group]:
        return _groups(self, Automation.Trigger.choices, self.TRIGGER_FIELDS)

    def settings(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        trigger = data.pop("trigger") or Automation.Trigger.JOINED_LIST
        data.pop("name", None)
        data.pop("mailing_list", None)
        if data.get("date_time") is None:
            data.pop("date_time")
        return {"trigger": trigger, **data}


class AutomationForm(TriggerForm):
    name = forms.CharField(label=_("Name"), max_length=200)
    mailing_list = forms.ModelChoiceField(
        label=_("List"),
        queryset=MailingList.objects.none(),
        empty_label=None,
        help_text=_(
            "Its subscribers enter by the trigger below, and its messages go to them only."
        ),
    )
    field_order = ["name", "mailing_list"]
    common = ("name", "mailing_list", "trigger")

    def __init__(self, *args: Any, account: Account, **kwargs: Any) -> None:
        super().__init__(*args, account=account, **kwargs)
        _choose_from(
            self.fields["mailing_list"],
            MailingList.objects.filter(account=account).order_by("name"),
            Missing(
                _("You have no list yet: an automation's messages go to the subscribers of one."),
                _("New list"),
                reverse("audience:list_new"),
            ),
            _("Create a list first: an automation's messages go to its subscribers."),
        )


def _step_label(step: Step) -> str:
    """A step in a choice: its number and what it does, a message with its subject as
    people read it, tags as words (the number alone said nothing; a new customer chose
    among "Step 2", "Step 3")."""
    values = {"n": step.position + 1, "kind": step.get_kind_display()}
    if step.kind == Step.Kind.SEND and step.campaign is not None:
        subject = readable_subject(step.campaign.subject)
        return str(_("Step %(n)s · %(kind)s: “%(subject)s”") % {**values, "subject": subject})
    return str(_("Step %(n)s · %(kind)s") % values)


class StepForm(Grouped, forms.Form):
    """A step to add (at the end, or before another) or to change: the fields of its
    kind are read, the others left empty."""

    kind = forms.ChoiceField(
        label=_("Kind"), choices=Step.Kind.choices, initial=Step.Kind.SEND, required=False
    )
    before = forms.ModelChoiceField(
        label=_("Insert before"),
        queryset=Step.objects.none(),
        required=False,
        empty_label=_("at the end"),
    )
    wait_days = forms.IntegerField(
        label=_("Wait (days)"),
        min_value=0,
        max_value=MAX_WAIT_DAYS,
        initial=1,
        required=False,
        help_text=_("After entering, or after the step before; 0 sends at once."),
    )
    subject = forms.CharField(label=_("Subject"), max_length=300, required=False)
    from_name = forms.CharField(label=_("From name"), max_length=200, required=False)
    from_email = forms.EmailField(label=_("From address"), required=False)
    body = forms.CharField(
        label=_("Message"),
        widget=forms.Textarea(attrs={"rows": 6}),
        required=False,
        help_text=_("Markdown; edit it further in the campaign editor before starting."),
    )
    wait_amount = forms.IntegerField(label=_("Wait"), min_value=0, required=False)
    wait_unit = forms.ChoiceField(label=_("Unit"), choices=Step.Unit.choices, required=False)
    wait_weekday = forms.TypedChoiceField(
        label=_("Or until the next"),
        choices=WEEKDAYS,
        coerce=int,
        empty_value=None,
        required=False,
    )
    wait_time = forms.TimeField(label=_("At (account's time zone)"), required=False)
    test = forms.ChoiceField(
        label=_("Condition"), choices=[("", "—"), *Step.Test.choices], required=False
    )
    # Each used by some conditions only: automations/grouped.js shows it for those
    # (`data-when` names the choosing field, `data-values` its values), all without JS.
    key = forms.CharField(
        label=_("Attribute or tag"),
        max_length=100,
        required=False,
        widget=forms.TextInput(
            attrs={"data-when": "test", "data-values": "equals contains is_set has_tag"}
        ),
    )
    value = forms.CharField(
        label=_("Value"),
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"data-when": "test", "data-values": "equals contains"}),
    )
    about = forms.ModelChoiceField(
        label=_("Message of step"),
        queryset=Step.objects.none(),
        required=False,
        widget=forms.Select(attrs={"data-when": "test", "data-values": "opened clicked"}),
    )
    otherwise = forms.ModelChoiceField(
        label=_("If not met, go to"),
        queryset=Step.objects.none(),
        required=False,
        empty_label=_("leave the automation"),
    )
    tag = forms.CharField(label=_("Tag"), max_length=100, required=False)
    target_list = forms.ModelChoiceField(
        label=_("List"), queryset=MailingList.objects.none(), required=False
    )

    KIND_FIELDS = {
        Step.Kind.SEND: ("wait_days", "subject", "from_name", "from_email", "body"),
        Step.Kind.WAIT: ("wait_amount", "wait_unit", "wait_weekday", "wait_time"),
        Step.Kind.CONDITION: ("test", "key", "value", "about", "otherwise"),
        Step.Kind.ADD_TAG: ("tag",),
        Step.Kind.REMOVE_TAG: ("tag",),
        Step.Kind.ADD_TO_LIST: ("target_list",),
        Step.Kind.REMOVE_FROM_LIST: ("target_list",),
        Step.Kind.LEAVE: (),
    }

    switch = "kind"
    common: tuple[str, ...] = ("kind", "before")
    after: tuple[str, ...] = ()

    def groups(self) -> list[Group]:
        return _groups(self, Step.Kind.choices, self.KIND_FIELDS)

    def __init__(self, *args: Any, automation: Automation, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        steps = (
            Step.objects.filter(automation=automation)
            .select_related("campaign")
            .order_by("position")
        )
        for name in ("before", "about", "otherwise"):
            field = self.fields[name]
            assert isinstance(field, forms.ModelChoiceField)
            # Opened or clicked is asked of a message: only the steps that send one.
            field.queryset = steps.filter(kind=Step.Kind.SEND) if name == "about" else steps
            field.label_from_instance = _step_label  # type: ignore[method-assign,assignment]
        lists = self.fields["target_list"]
        assert isinstance(lists, forms.ModelChoiceField)
        lists.queryset = MailingList.objects.filter(account=automation.account_id).order_by("name")
        if not steps.exists():
            # The first message of a series is the welcome: at once, unless asked.
            self.fields["wait_days"].initial = 0

    def step_settings(self, kind: str) -> dict[str, Any]:
        """The settings of `kind` from the form (the message's own fields included)."""
        data = self.cleaned_data
        values = {name: data.get(name) for name in self.KIND_FIELDS[Step.Kind(kind)]}
        if kind == Step.Kind.CONDITION:
            values["otherwise"] = data.get("otherwise")
        if kind == Step.Kind.SEND:
            values["wait_days"] = 0 if values["wait_days"] is None else values["wait_days"]
            values = {k: ("" if v is None else v) for k, v in values.items()}
        if kind == Step.Kind.WAIT and values.get("wait_weekday") is not None:
            values.pop("wait_amount", None)
            values.pop("wait_unit", None)
        return {
            k: v
            for k, v in values.items()
            if v not in (None, "") or k == "otherwise" or kind == Step.Kind.SEND
        }


class EndpointForm(forms.Form):
    url = forms.CharField(label=_("Endpoint URL"), max_length=500)
    events = forms.MultipleChoiceField(
        label=_("Events"),
        choices=WebhookEndpoint.Event.choices,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["url"].help_text = _endpoint_help()


def _endpoint_help() -> StrOrPromise:
    """What this installation accepts, read when the form is made as `webhooks.check_url`
    reads it: plain http too where the operator allows hosts for it (a local receiver).
    The hosts are not named: they may be the operator's internal names."""
    if webhooks.http_hosts():
        return _(
            "https, or plain http to a host the operator of this installation allows; "
            "Tidings signs each message (Standard Webhooks)."
        )
    return _("https only; Tidings signs each message (Standard Webhooks).")


def _other(label: str, name: StrOrPromise, max_length: int) -> forms.CharField:
    return forms.CharField(
        label=format_lazy(_("{what} of variant {label}"), what=name, label=label),
        max_length=max_length,
        required=False,
    )


def _time(label: str) -> forms.DateTimeField:
    return forms.DateTimeField(
        label=format_lazy(_("Send time of variant {label}"), label=label),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    )


class SplitTestForm(forms.Form):
    """One form for every kind of test: the fields of the kind chosen are read, the
    others ignored (the page groups them by kind)."""

    campaign = forms.ModelChoiceField(
        label=_("Campaign (variant A)"), queryset=Campaign.objects.none(), empty_label=None
    )
    kind = forms.ChoiceField(
        label=_("What is tested"),
        choices=SplitTest.Kind.choices,
        initial=SplitTest.Kind.SUBJECT,
        widget=forms.RadioSelect,
    )
    subject_b = _other("B", _("Subject"), 300)
    subject_c = _other("C", _("Subject"), 300)
    subject_d = _other("D", _("Subject"), 300)
    from_name_b = _other("B", _("Sender name"), 200)
    from_name_c = _other("C", _("Sender name"), 200)
    from_name_d = _other("D", _("Sender name"), 200)
    variants = forms.IntegerField(
        label=_("Number of variants"),
        min_value=2,
        max_value=4,
        initial=2,
        required=False,
        help_text=_("Content: B to D start as copies of A; edit each in the campaign editor."),
    )
    send_time_a = _time("A")
    send_time_b = _time("B")
    send_time_c = _time("C")
    send_time_d = _time("D")
    # Not required: the page sends only the chosen kind's fields (automations/grouped.js).
    timezone = forms.ChoiceField(
        label=_("Time zone"), initial="UTC", choices=time_zone_choices, required=False
    )
    test_percent = forms.IntegerField(
        label=_("Test share (%)"),
        min_value=2,
        max_value=50,
        initial=20,
        help_text=_(
            "Split evenly between the variants; the winner goes to the rest. A test of "
            "send time goes to everyone."
        ),
    )
    metric = forms.ChoiceField(
        label=_("Winner by"),
        choices=SplitTest.Metric.choices,
        help_text=_("A test of send time compares opens or clicks; it has no winner."),
    )
    wait_hours = forms.IntegerField(
        label=_("Decide after (hours)"), min_value=1, max_value=24 * 14, initial=4
    )

    def __init__(self, *args: Any, account: Account, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choose_from(
            self.fields["campaign"],
            Campaign.objects.filter(
                account=account, status=Campaign.Status.DRAFT, split_variant__isnull=True
            ).order_by("-created_at"),
            Missing(
                _("You have no draft campaign to test: variant A is a draft campaign."),
                _("New campaign"),
                reverse("campaigns:new"),
            ),
            _("Write a draft campaign first: it is the test's variant A."),
        )
        if self.data.get("kind") == SplitTest.Kind.SEND_TIME:
            # Not asked of a test of send time (everyone, no wait).
            self.fields["test_percent"].required = False
            self.fields["wait_hours"].required = False

    def arguments(self) -> dict[str, Any]:
        """The service's arguments (`splittests.create_test`) from the cleaned form."""
        data = self.cleaned_data
        zone = ZoneInfo(data.get("timezone") or "UTC")
        times = [
            timezone.make_aware(data[f"send_time_{x}"].replace(tzinfo=None), zone)
            for x in "abcd"
            if data.get(f"send_time_{x}")
        ]
        return {
            "campaign": data["campaign"],
            "kind": data["kind"],
            "subjects": [data[f"subject_{x}"] for x in "bcd"],
            "from_names": [data[f"from_name_{x}"] for x in "bcd"],
            "variants": data.get("variants"),
            "send_times": times,
            "time_zone": zone.key,
            "test_percent": data.get("test_percent") or 20,
            "metric": data["metric"],
            "wait_hours": data.get("wait_hours") or 4,
        }
