"""The privacy policy (P11, P31, P34): written from configuration and the data map, and
published as numbered versions that are never edited.

The text is rendered from the template `privacy/policy.md`, and in each other language
of settings.LANGUAGES from `privacy/policy.<code>.md` (its translation, kept in step by
hand: tests/privacy/test_policy_languages.py compares their structure). A version holds
every language; a new one is published only when one of the rendered texts differs from
the latest version's (compared by fingerprint).
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from tidings.core import baseurl, locales
from tidings.core.datamap import (
    BASIS_LABELS,
    LegalBasis,
    customer_entries,
    lockout_minutes,
    plain,
)
from tidings.privacy.models import PolicyVersion

TEMPLATE = "privacy/policy.md"
# The name given to whatever comes before the first section heading.
INTRODUCTION = "Introduction"

# What each legal basis means for the customer, in the policy's words.
BASIS_EXPLANATION = {
    LegalBasis.CONTRACT: gettext_lazy("We need this to provide the service you signed up for."),
    LegalBasis.LEGAL_OBLIGATION: gettext_lazy("The law requires us to keep this."),
    LegalBasis.LEGITIMATE_INTEREST: gettext_lazy(
        "We keep this in our legitimate interest of running a safe and accountable service; "
        "you may object to it by writing to the privacy contact."
    ),
    LegalBasis.CONSENT: gettext_lazy(
        "We hold this only because you agreed to it, and you may withdraw "
        "that agreement at any time, as easily as you gave it."
    ),
}


@dataclass(frozen=True)
class DataUse:
    category: str
    purpose: str
    retention: str


@dataclass(frozen=True)
class BasisGroup:
    basis: str
    explanation: str
    uses: list[DataUse]


@dataclass(frozen=True)
class DiffLine:
    kind: Literal["same", "del", "ins"]
    text: str


def data_uses() -> list[BasisGroup]:
    """What the data map says we hold on customers, grouped by legal basis."""
    grouped: dict[LegalBasis, set[DataUse]] = {}
    for entry in customer_entries():
        use = DataUse(str(entry.category), plain(entry.purpose), plain(entry.retention))
        grouped.setdefault(LegalBasis(entry.legal_basis), set()).add(use)
    # Sorted, so that the order the apps register in never changes the text.
    return [
        BasisGroup(
            basis=str(BASIS_LABELS[basis]),
            explanation=str(BASIS_EXPLANATION[basis]),
            uses=sorted(grouped[basis], key=lambda u: (u.category, u.purpose)),
        )
        for basis in LegalBasis
        if basis in grouped
    ]


def policy_context() -> dict[str, Any]:
    return {
        "operator": settings.OPERATOR,
        "retention": settings.RETENTION,
        "base_url": baseurl.base_url(),
        "groups": data_uses(),
        "suppression_enabled": settings.SUPPRESSION_ENABLED,
        "secure": settings.SECURE,
        "staff_2fa": settings.STAFF_REQUIRE_2FA,
        "login_failure_limit": settings.AXES_FAILURE_LIMIT,
        "lockout_minutes": lockout_minutes(),
        "session_cookie": settings.SESSION_COOKIE_NAME,
        "session_hours": settings.SESSION_COOKIE_AGE // 3600,
        "csrf_cookie": settings.CSRF_COOKIE_NAME,
        "consent_cookie": settings.CONSENT_COOKIE_NAME,
        "language_cookie": settings.LANGUAGE_COOKIE_NAME,
        "consent_notice_days": settings.CONSENT_NOTICE_DAYS,
    }


def template_for(language: str) -> str:
    return TEMPLATE if language == settings.LANGUAGE_CODE else f"privacy/policy.{language}.md"


def render_policy(language: str | None = None) -> str:
    """The policy text as the configuration says it today, in `language` (by default the
    original, English)."""
    language = language or settings.LANGUAGE_CODE
    with locales.language(language):
        text = render_to_string(template_for(language), policy_context())
    # Template tags leave trailing spaces and runs of blank lines: tidy them so that
    # the fingerprint and the diffs see only real changes.
    lines = [line.rstrip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def fingerprint(text: str, translations: dict[str, str] | None = None) -> str:
    """Of the original text, and of its translations when there are any."""
    data = text
    for language, translated in sorted((translations or {}).items()):
        data += f"\x00{language}\x00{translated}"
    return hashlib.sha256(data.encode()).hexdigest()


def sections(text: str) -> dict[str, str]:
    """The policy's sections (level-2 headings) and their text."""
    found: dict[str, str] = {}
    heading = INTRODUCTION
    body: list[str] = []
    for line in text.splitlines():
        if line.startswith("## "):
            found[heading] = "\n".join(body).strip()
            heading, body = line[3:].strip(), []
        else:
            body.append(line)
    found[heading] = "\n".join(body).strip()
    if not found.get(INTRODUCTION):
        found.pop(INTRODUCTION, None)
    return found


def summarise_changes(old: str | None, new: str) -> str:
    """A short summary for the version history: which sections changed (in the active
    language: call it with the texts of one language)."""
    if old is None:
        return str(_("First version."))
    before, after = sections(old), sections(new)
    changed = [h for h in after if h in before and before[h] != after[h]]
    added = [h for h in after if h not in before]
    removed = [h for h in before if h not in after]
    parts = []
    if changed:
        parts.append(str(_("Changed: %(sections)s.") % {"sections": "; ".join(changed)}))
    if added:
        parts.append(str(_("Added: %(sections)s.") % {"sections": "; ".join(added)}))
    if removed:
        parts.append(str(_("Removed: %(sections)s.") % {"sections": "; ".join(removed)}))
    return " ".join(parts) or str(_("Wording only."))


def _translations(latest: PolicyVersion | None) -> dict[str, dict[str, str]]:
    found = {}
    for language in locales.language_codes():
        if language == settings.LANGUAGE_CODE:
            continue
        text = render_policy(language)
        with locales.language(language):
            old = latest.translations.get(language, {}).get("text") if latest else None
            changes = summarise_changes(old, text)
        found[language] = {"text": text, "changes": changes}
    return found


def latest_version() -> PolicyVersion | None:
    return PolicyVersion.objects.order_by("-number").first()


def publish_policy() -> PolicyVersion:
    """Publish the policy as configured now; a new version only if its text changed."""
    text = render_policy()
    for _attempt in range(3):
        latest = latest_version()
        translations = _translations(latest)
        digest = fingerprint(text, {k: v["text"] for k, v in translations.items()})
        if latest is not None and latest.fingerprint == digest:
            return latest
        try:
            with transaction.atomic():
                with locales.language(settings.LANGUAGE_CODE):
                    changes = summarise_changes(latest.text if latest else None, text)
                return PolicyVersion.objects.create(
                    number=latest.number + 1 if latest else 1,
                    published_at=timezone.now(),
                    text=text,
                    changes=changes,
                    fingerprint=digest,
                    translations=translations,
                )
        except IntegrityError:
            # Another process (a web worker, `tidings up`) published the same number at
            # the same moment: look at the latest again.
            continue
    raise RuntimeError("Could not publish the privacy policy: version numbers kept colliding")


def current_policy() -> PolicyVersion:
    """The policy in force: the latest version, publishing the first if there is none."""
    return latest_version() or publish_policy()


def previous_version(version: PolicyVersion) -> PolicyVersion | None:
    return PolicyVersion.objects.filter(number__lt=version.number).order_by("-number").first()


def diff_lines(old: str, new: str, context: int = 1) -> list[list[DiffLine]]:
    """The changed passages between two texts, line by line, with a little context."""
    before, after = old.splitlines(), new.splitlines()
    if before == after:
        return []
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    hunks = []
    for group in matcher.get_grouped_opcodes(context):
        hunk: list[DiffLine] = []
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                hunk += [DiffLine("same", line) for line in before[i1:i2]]
            else:
                hunk += [DiffLine("del", line) for line in before[i1:i2]]
                hunk += [DiffLine("ins", line) for line in after[j1:j2]]
        hunks.append(hunk)
    return hunks
