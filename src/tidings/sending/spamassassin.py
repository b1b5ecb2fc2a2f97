"""SpamAssassin's opinion of a message, with its local rules only (no network test):
the send page's checklist shows it (`checklist.score_spam`, in a worker job). Debian's
`spamassassin` package; where it is missing, the score is "not available"."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from typing import Any

from django.utils.translation import gettext as _

log = logging.getLogger(__name__)

# Seconds one scoring may take; a message that takes longer gets no score.
TIMEOUT = 60


def report(raw: bytes) -> dict[str, Any]:
    """SpamAssassin's score of a message with its local rules only (no network), and
    the rules that fired; {"score": None, "error": why} when it cannot be had."""
    program = shutil.which("spamassassin")
    if program is None:
        return {"score": None, "error": _("spamassassin is not installed on this server.")}
    try:
        done = subprocess.run(
            [program, "-L", "-t"],
            input=raw,
            capture_output=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"score": None, "error": _("spamassassin took too long.")}
    output = done.stdout.decode(errors="replace")
    found = re.search(r"Content analysis details:\s+\((-?[\d.]+) points", output)
    if found is None:
        log.warning("spamassassin gave no score (exit %s)", done.returncode)
        return {"score": None, "error": _("spamassassin gave no score.")}
    details = output[found.start() :]
    rules = [
        m.group(2)
        for m in re.finditer(r"^\s*(-?[\d.]+)\s+([A-Z0-9_]+)\s", details, re.M)
        if float(m.group(1)) > 0
    ]
    return {"score": float(found.group(1)), "rules": rules}
