"""The public site: readable by anyone, with no account, no cookie and no tracking (P29)."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import translation
from django.views.decorators.csrf import csrf_exempt

from tidings.core import ratelimit
from tidings.core.clientip import client_ip
from tidings.desk import services
from tidings.desk.forms import ContactForm, shown_at_token
from tidings.desk.models import Channel
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


# The public site sets no cookie (P29), so no CSRF token: the signed time the form was
# shown, the honeypot and the rate limit stand in for it, as on the hosted forms.
@csrf_exempt
def contact(request: HttpRequest) -> HttpResponse:
    """How to reach the operator, its privacy contact and the supervisory authority (P34),
    and a form that opens a support conversation (no account needed): rate-limited per
    client, with a first-party anti-bot check (desk.forms.ContactForm.is_bot)."""
    form = ContactForm(request.POST or None, initial={"shown": shown_at_token()})
    if request.method != "POST":
        return render(request, "public/contact.html", {"form": form})
    if form.is_bot():
        # Told the same as a person, stored nothing.
        return render(request, "public/contact_sent.html")
    if error := form.timing_error():
        form.ask_again(error)
        return render(request, "public/contact.html", {"form": form}, status=400)
    limit = settings.DESK["form_posts_per_hour"]
    subject = client_ip(request) or "unknown"
    if not ratelimit.allow("desk.contact", subject, limit=limit, seconds=3600):
        return render(request, "public/contact.html", {"form": form, "limited": True}, status=429)
    if form.is_valid():
        try:
            services.open_conversation(
                email=form.cleaned_data["email"],
                name=form.cleaned_data["name"],
                subject=form.cleaned_data["subject"],
                body=form.cleaned_data["body"],
                channel=Channel.FORM,
            )
        except services.DeskError as error:
            form.add_error(None, str(error))
        else:
            return render(request, "public/contact_sent.html")
    form.data = {**request.POST.dict(), "shown": shown_at_token()}
    return render(request, "public/contact.html", {"form": form}, status=400)


def _policy_page(request: HttpRequest, version: PolicyVersion) -> HttpResponse:
    # The history needs dates and summaries, not every version's full text.
    history = list(PolicyVersion.objects.defer("text").order_by("-number"))
    previous = policy.previous_version(version)
    language = translation.get_language() or settings.LANGUAGE_CODE
    text = version.text_in(language)
    for item in history:
        item.changes = item.changes_in(language)  # shown, never saved
    # A diff only between two texts of the same language.
    old = previous.text_in(language) if previous else None
    if previous is not None and language in version.translations:
        old = previous.translations.get(language, {}).get("text")
    return render(
        request,
        "public/privacy.html",
        {
            "version": version,
            "changes": version.changes_in(language),
            "latest": history[0],
            "is_latest": version.number == history[0].number,
            "body": to_html(text),
            "previous": previous,
            "diff": policy.diff_lines(old, text) if old is not None else [],
            "history": history,
        },
    )
