"""The automations' pages: the list, a new one, and one automation's page where the
flow is seen at a glance (each step with how many contacts wait for it and how many it
was done for), steps are added, and it is started, paused and resumed."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from tidings.accounts.decorators import account_of, customer_required
from tidings.accounts.models import User
from tidings.automations import engine, services, splittests, webhooks
from tidings.automations.forms import (
    AutomationForm,
    EndpointForm,
    SplitTestForm,
    StepForm,
    TriggerForm,
)
from tidings.automations.models import (
    Automation,
    Enrolment,
    SplitTest,
    Step,
    WebhookEndpoint,
)
from tidings.sending.models import SendingSettings
from tidings.sending.reports import tracking_mode


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _automation(request: HttpRequest, uuid: UUID) -> Automation:
    return get_object_or_404(
        Automation.objects.select_related("mailing_list"), account=account_of(request), uuid=uuid
    )


@customer_required
def automation_list(request: HttpRequest) -> HttpResponse:
    automations = Automation.objects.filter(account=account_of(request)).select_related(
        "mailing_list"
    )
    return render(request, "automations/list.html", {"automations": automations})


@customer_required
def automation_new(request: HttpRequest) -> HttpResponse:
    account = account_of(request)
    form = AutomationForm(request.POST or None, account=account)
    if request.method == "POST" and form.is_valid():
        try:
            automation = services.create_automation(
                account,
                name=form.cleaned_data["name"],
                mailing_list=form.cleaned_data["mailing_list"],
                by=_user(request),
                **form.settings(),
            )
        except services.AutomationError as error:
            form.add_error(None, str(error))
        else:
            return redirect("automations:detail", automation.uuid)
    return render(request, "automations/new.html", {"form": form})


MESSAGE_FIELDS = ("subject", "from_email", "from_name", "body")


def _step_of(automation: Automation, raw: str | None) -> Step:
    try:
        pk = int(raw or "")
    except ValueError:
        raise Http404 from None
    return get_object_or_404(Step, automation=automation, pk=pk)


# What `_change_steps` answers when a step with contacts waiting at it is to be removed:
# the page asks again, saying how many move on.
CONFIRM_REMOVAL = "confirm-removal"


def _change_steps(request: HttpRequest, automation: Automation, form: StepForm) -> str | None:
    """Add, change or remove a step as the form asks: a message for the page, or None
    when the form was not valid."""
    op = request.POST.get("op", "add")
    if op == "remove":
        step = _step_of(automation, request.POST.get("step"))
        waiting = automation.enrolments.filter(status=Enrolment.Status.ACTIVE, step=step).count()
        if waiting and request.POST.get("confirm") != str(step.pk):
            return CONFIRM_REMOVAL  # asked again: its contacts would move on at once
        if services.remove_step(step, by=_user(request)) is not None:
            return _("Step removed. Its message is stopped; its report stays in Campaigns.")
        return _("Step removed.")
    if not form.is_valid():
        return None
    if op == "edit":
        step = _step_of(automation, request.POST.get("step"))
        settings = form.step_settings(step.kind)
        for name in MESSAGE_FIELDS:
            settings.pop(name, None)
        services.update_step(step, by=_user(request), **settings)
        return _("Step changed.")
    kind = form.cleaned_data.get("kind") or Step.Kind.SEND
    settings = form.step_settings(kind)
    message = {name: settings.pop(name) for name in MESSAGE_FIELDS if name in settings}
    services.add_step(
        automation,
        kind=kind,
        before=form.cleaned_data.get("before"),
        by=_user(request),
        **message,
        **settings,
    )
    return _("Step added.")


def _unmeetable(steps: list[tuple[Step, int, int]]) -> None:
    """Say, on each condition on an open or a click that nobody can meet, why (P26: only
    what per-contact tracking recorded counts, so every contact goes to "did not" and the
    counts alone would not tell the customer why): `step.unmeetable`, else empty."""
    for step, _waiting, _passed in steps:
        step.unmeetable = ""  # type: ignore[attr-defined]
        if step.test not in (Step.Test.OPENED, Step.Test.CLICKED) or step.about is None:
            continue
        message = step.about.campaign
        if message is None:  # `about` is a send step, which always has its message
            continue
        reason = services.untracked(step)
        if not reason and tracking_mode(message) != SendingSettings.Tracking.PER_CONTACT:
            reason = _(
                "Nobody can meet this condition: your account tracks opens and clicks in "
                "aggregate only (Sending settings)."
            )
        step.unmeetable = reason  # type: ignore[attr-defined]


@customer_required
def automation_detail(request: HttpRequest, uuid: UUID) -> HttpResponse:
    automation = _automation(request, uuid)
    account = account_of(request)
    posted = request.POST if request.method == "POST" else None
    removing: Step | None = None
    trigger_form = TriggerForm(
        posted if posted and posted.get("op") == "trigger" else None,
        account=account,
        initial={
            "trigger": automation.trigger,
            "trigger_tag": automation.trigger_tag,
            "date_attribute": automation.date_attribute,
            "date_yearly": automation.date_yearly,
            "date_time": automation.date_time,
            "trigger_campaign": automation.trigger_campaign_id,
            "trigger_url": automation.trigger_url,
            "event_name": automation.event_name,
            "reentry": automation.reentry,
        },
        prefix="trigger",
    )
    form = StepForm(
        posted if posted and posted.get("op") != "trigger" else None,
        automation=automation,
        initial={"from_email": _user(request).email},  # as the campaign editor does
    )
    if posted is not None:
        try:
            if posted.get("op") == "trigger":
                if trigger_form.is_valid():
                    services.set_trigger(automation, by=_user(request), **trigger_form.settings())
                    messages.success(request, _("Trigger saved."))
                    return redirect("automations:detail", automation.uuid)
            else:
                done = _change_steps(request, automation, form)
                if done == CONFIRM_REMOVAL:
                    removing = _step_of(automation, posted.get("step"))
                    form = StepForm(None, automation=automation)
                elif done is not None:
                    messages.success(request, done)
                    return redirect("automations:detail", automation.uuid)
        except services.AutomationError as error:
            (trigger_form if posted.get("op") == "trigger" else form).add_error(None, str(error))
    steps = engine.step_counts(automation)
    _unmeetable(steps)
    totals = {
        status: automation.enrolments.filter(status=status).count()
        for status in Enrolment.Status.values
    }
    return render(
        request,
        "automations/detail.html",
        {
            "automation": automation,
            "steps": steps,
            "form": form,
            "trigger_form": trigger_form,
            "entered": sum(totals.values()),
            "done": totals[Enrolment.Status.DONE],
            "left": totals[Enrolment.Status.LEFT] + totals[Enrolment.Status.EXITED],
            "removing": removing,
            "removing_waiting": next((w for s, w, _p in steps if s == removing), 0),
        },
    )


@customer_required
@require_POST
def automation_action(request: HttpRequest, uuid: UUID) -> HttpResponse:
    automation = _automation(request, uuid)
    action = request.POST.get("action")
    try:
        if action == "start":
            services.start(automation, by=_user(request))
            messages.success(request, _("The automation is running."))
        elif action == "resume":
            services.resume(automation, by=_user(request))
            messages.success(
                request, _("The automation goes on: each contact from where they were.")
            )
        elif action == "pause":
            services.pause(automation, by=_user(request))
            messages.success(
                request, _("The automation is paused: its contacts wait where they are.")
            )
        else:
            messages.error(request, _("Unknown action."))
    except services.AutomationError as error:
        messages.error(request, str(error))
    return redirect("automations:detail", automation.uuid)


@customer_required
def automation_delete(request: HttpRequest, uuid: UUID) -> HttpResponse:
    automation = _automation(request, uuid)
    if request.method == "POST":
        try:
            services.delete_automation(automation, by=_user(request))
        except services.AutomationError as error:
            messages.error(request, str(error))
            return redirect("automations:detail", automation.uuid)
        messages.success(request, _("Deleted “%(name)s”.") % {"name": automation.name})
        return redirect("automations:list")
    steps = automation.steps.count()
    return render(request, "automations/delete.html", {"automation": automation, "steps": steps})


# Webhooks --------------------------------------------------------------------------------


def _endpoint(request: HttpRequest, uuid: UUID) -> WebhookEndpoint:
    return get_object_or_404(WebhookEndpoint, account=account_of(request), uuid=uuid)


@customer_required
def webhook_list(request: HttpRequest) -> HttpResponse:
    account = account_of(request)
    form = EndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint = webhooks.create_endpoint(account, by=_user(request), **form.cleaned_data)
        except webhooks.WebhookError as error:
            form.add_error("url", str(error))
        else:
            return redirect("automations:webhook", endpoint.uuid)
    endpoints = WebhookEndpoint.objects.filter(account=account)
    return render(request, "automations/webhooks.html", {"form": form, "endpoints": endpoints})


@customer_required
def webhook_detail(request: HttpRequest, uuid: UUID) -> HttpResponse:
    endpoint = _endpoint(request, uuid)
    if request.method == "POST":
        if request.POST.get("action") == "enable":
            webhooks.enable(endpoint, by=_user(request))
            messages.success(request, _("The endpoint is on again."))
        elif request.POST.get("action") == "test":
            webhooks.send_test(endpoint, by=_user(request))
            messages.success(request, _("A test event is on its way: see the log below."))
        elif request.POST.get("action") == "rotate":
            webhooks.rotate_secret(endpoint, by=_user(request))
            messages.success(request, _("New signing secret: every message is signed with it now."))
        elif request.POST.get("action") == "delete":
            webhooks.delete_endpoint(endpoint, by=_user(request))
            messages.success(request, _("Endpoint deleted."))
            return redirect("automations:webhooks")
        return redirect("automations:webhook", endpoint.uuid)
    log = webhooks.delivery_log(endpoint)
    events = dict(WebhookEndpoint.Event.choices)
    return render(
        request,
        "automations/webhook.html",
        {
            "endpoint": endpoint,
            "log": log,
            "events": [events.get(e, e) for e in endpoint.events],
        },
    )


# A/B tests --------------------------------------------------------------------------------


def _split_test(request: HttpRequest, uuid: UUID) -> SplitTest:
    return get_object_or_404(
        SplitTest.objects.select_related("campaign", "winner", "rest"),
        account=account_of(request),
        uuid=uuid,
    )


@customer_required
def split_test_list(request: HttpRequest) -> HttpResponse:
    account = account_of(request)
    form = SplitTestForm(request.POST or None, account=account)
    if request.method == "POST" and form.is_valid():
        try:
            test = splittests.create_test(by=_user(request), **form.arguments())
        except splittests.SplitTestError as error:
            form.add_error(None, str(error))
        else:
            return redirect("automations:split_test", test.uuid)
    tests = SplitTest.objects.filter(account=account).select_related("campaign")
    return render(request, "automations/split_tests.html", {"form": form, "tests": tests})


@customer_required
def split_test_detail(request: HttpRequest, uuid: UUID) -> HttpResponse:
    test = _split_test(request, uuid)
    if request.method == "POST":
        try:
            if request.POST.get("action") == "start":
                splittests.start_test(test, by=_user(request))
                if test.kind == SplitTest.Kind.SEND_TIME:
                    messages.success(request, _("Each part is scheduled for its time."))
                else:
                    messages.success(request, _("The variants are being sent to the sample."))
            elif request.POST.get("action") == "choose" and test.status == SplitTest.Status.TESTING:
                label = request.POST.get("label", "")
                if request.POST.get("confirm") != label:
                    # Sending to the rest cannot be undone: asked again, with the button's
                    # label typed in a hidden field only the confirmation's form carries.
                    figures = splittests.report(test)
                    context = {"test": test, "report": figures, "confirming": label}
                    return render(request, "automations/split_test.html", context)
                splittests.decide(test, label=label, by=_user(request))
                messages.success(request, _("The winner is being sent to the rest."))
        except splittests.SplitTestError as error:
            messages.error(request, str(error))
        return redirect("automations:split_test", test.uuid)
    figures = splittests.report(test)
    return render(request, "automations/split_test.html", {"test": test, "report": figures})
