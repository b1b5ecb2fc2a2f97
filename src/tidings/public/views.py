"""The public site: readable by anyone, with no account, no cookie and no tracking (P29)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from tidings.privacy import policy
from tidings.privacy.models import PolicyVersion
from tidings.public.markup import to_html


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "public/home.html")


def privacy(request: HttpRequest) -> HttpResponse:
    """The policy in force, what changed in it, and every earlier version (P31)."""
    return _policy_page(request, policy.current_policy())


def policy_version(request: HttpRequest, number: int) -> HttpResponse:
    """One published version, as it was worded then."""
    return _policy_page(request, get_object_or_404(PolicyVersion, number=number))


def contact(request: HttpRequest) -> HttpResponse:
    """How to reach the operator, its privacy contact and the supervisory authority (P34)."""
    return render(request, "public/contact.html")


def _policy_page(request: HttpRequest, version: PolicyVersion) -> HttpResponse:
    # The history needs dates and summaries, not every version's full text.
    history = list(PolicyVersion.objects.defer("text").order_by("-number"))
    previous = policy.previous_version(version)
    return render(
        request,
        "public/privacy.html",
        {
            "version": version,
            "latest": history[0],
            "is_latest": version.number == history[0].number,
            "body": to_html(version.text),
            "previous": previous,
            "diff": policy.diff_lines(previous.text, version.text) if previous else [],
            "history": history,
        },
    )
