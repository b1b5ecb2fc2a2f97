"""Who enters an automation: the one rule, read by the scheduler when it enters the
contacts a trigger fired for (`engine.admit`) and by the API when it answers an event
with the automations the contact will enter.

A contact enters when they are a subscriber of the automation's list who may get its
marketing mail (`audience.mailability`), once; again (a new round) only when the
automation allows re-entry, they are not in it now, and the trigger fired after their
last entry."""

from __future__ import annotations

from datetime import datetime

from tidings.audience.mailability import mailable_ids
from tidings.automations.models import Automation, Enrolment
from tidings.core.mail import Purpose


def entering(
    automation: Automation, when: dict[int, datetime]
) -> tuple[list[int], list[Enrolment]]:
    """Of these contacts (each with the moment its trigger fired), those who enter now:
    (contact ids entering for the first time, in order; their enrolments starting a new
    round)."""
    if not when:
        return [], []
    may = mailable_ids(Purpose.MARKETING, list(when), [automation.mailing_list_id])
    existing = {
        e.contact_id: e
        for e in Enrolment.objects.filter(automation=automation, contact_id__in=list(may))
    }
    fresh: list[int] = []
    again: list[Enrolment] = []
    for contact_id in sorted(may):
        enrolment = existing.get(contact_id)
        if enrolment is None:
            fresh.append(contact_id)
        elif (
            automation.reentry
            and enrolment.status != Enrolment.Status.ACTIVE
            and enrolment.entered_at < when[contact_id]
        ):
            again.append(enrolment)
    return fresh, again
