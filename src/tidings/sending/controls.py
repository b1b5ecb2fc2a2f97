"""What the send controls of a campaign show, for the campaign page and the send page."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tidings.campaigns.forms import TestSendForm
from tidings.campaigns.models import Campaign
from tidings.sending import checklist, engine, lifecycle
from tidings.sending.forms import ScheduleForm
from tidings.sending.senders import sender_for
from tidings.sending.services import postal_address_of

# Addresses of messages with an unknown outcome listed on the page (the count is exact).
UNKNOWN_SHOWN = 50
FAILURE_REASONS_SHOWN = 5


def schedule_initial(campaign: Campaign) -> dict[str, Any]:
    """The schedule form's values: the campaign's planned time, shown in the time zone it
    was chosen in."""
    name = campaign.schedule_timezone or "UTC"
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        name, zone = "UTC", ZoneInfo("UTC")
    initial: dict[str, Any] = {"timezone": name}
    when: datetime | None = campaign.scheduled_at
    if when is not None:
        initial["when"] = when.astimezone(zone).strftime("%Y-%m-%dT%H:%M")
    return initial


def context_for(
    campaign: Campaign, *, user: Any, schedule: ScheduleForm | None = None
) -> dict[str, Any]:
    progress = engine.progress(campaign)
    done = progress["total"] - progress["remaining"]
    # The buttons are the actions the lifecycle's table allows now, nothing of their own.
    allowed = lifecycle.allowed(campaign)
    not_started = "start" in allowed
    # A step's message is sent by its automation alone: no Send now nor Schedule, and
    # once open it has no end of its own (no "% done", no rate).
    automation_step = lifecycle.automation_step_of(campaign)
    step_message = not_started and automation_step is not None
    # Past draft and scheduled, it went out, unless it was cancelled before its time:
    # nothing then to show progress or a report of (the campaigns list shows no figures).
    went = not not_started and (
        campaign.started_at is not None or automation_step is not None or progress["total"] > 0
    )
    # The rails: every check of the message as it would go out, before it may go.
    rails = checklist.checklist(campaign) if not_started else None
    sender = sender_for(
        campaign.account_id,
        from_email=campaign.from_email,
        from_name=campaign.from_name,
        reply_to=campaign.reply_to,
    )
    return {
        "campaign": campaign,
        "progress": progress,
        "done": done,
        "percent": int(100 * done / progress["total"]) if progress["total"] else 0,
        "estimate": rails.recipients if rails is not None else None,
        "checklist": rails,
        "schedule": schedule or ScheduleForm(initial=schedule_initial(campaign)),
        "test_form": TestSendForm(initial={"recipients": getattr(user, "email", "")}),
        "relay": engine.pick_relay(campaign.account),
        "can_pause": "pause" in allowed,
        "can_resume": "resume" in allowed,
        "can_cancel": "cancel" in allowed,
        "can_unschedule": "unschedule" in allowed,
        "can_resend_unknown": "resend unknown" in allowed and progress["unknown"] > 0,
        "failure_reasons": (
            engine.failure_reasons(campaign, limit=FAILURE_REASONS_SHOWN)
            if progress["failed"]
            else []
        ),
        "unknown_recipients": (
            engine.unknown_recipients(campaign, limit=UNKNOWN_SHOWN) if progress["unknown"] else []
        ),
        # A step's message reports from its first day: it never finishes by itself.
        "has_report": went and (campaign.status in Campaign.ENDED or automation_step is not None),
        "started": went,
        "step_message": step_message,
        "automation_step": automation_step,
        "needs_postal_address": not_started and not postal_address_of(campaign.account),
        # The From it actually goes out with: the operator's until the domain is proven.
        "sender": sender,
        "sender_differs": sender.from_email.lower() != campaign.from_email.lower(),
    }
