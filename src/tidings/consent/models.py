"""Cookie consent (P22, P28), third parties (P24, P27) and aggregate page views (P26)."""

from __future__ import annotations

import contextlib
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy


class Category(models.TextChoices):
    """What a cookie or a third party is for; every category but the first needs consent."""

    NECESSARY = "necessary", gettext_lazy("Strictly necessary")
    PREFERENCES = "preferences", gettext_lazy("Preferences")
    ANALYTICS = "analytics", gettext_lazy("Analytics")
    ADVERTISING = "advertising", gettext_lazy("Advertising")
    SUPPORT = "support", gettext_lazy("Support widget")
    # Service providers that receive personal data on the servers' side, never through
    # the browser: no tag, no cookie, never a consent category.
    MAIL = "mail", gettext_lazy("Mail delivery (SMTP relay or mail provider)")
    HOSTING = "hosting", gettext_lazy("Hosting")
    BACKUPS = "backups", gettext_lazy("Backups")
    PROCESSOR = "processor", gettext_lazy("Other service provider")


OPTIONAL = (Category.PREFERENCES, Category.ANALYTICS, Category.ADVERTISING, Category.SUPPORT)
SERVER_SIDE = (Category.MAIL, Category.HOSTING, Category.BACKUPS, Category.PROCESSOR)
# Refused whenever the browser sends Do Not Track or Global Privacy Control (P28).
TRACKING = (Category.ANALYTICS, Category.ADVERTISING)


class ConsentRecord(models.Model):
    """Proof of one cookie choice (P22): what was chosen, on which banner version, when."""

    class Method(models.TextChoices):
        BANNER = "banner", gettext_lazy("banner")
        SETTINGS = "settings", gettext_lazy("cookie settings page")
        DNT = "dnt", gettext_lazy("Do Not Track signal")
        GPC = "gpc", gettext_lazy("Global Privacy Control signal")

    consent_id = models.UUIDField(default=uuid.uuid4, db_index=True)
    categories = models.JSONField("categories allowed", default=list, blank=True)
    banner_version = models.CharField(max_length=64)
    given_at = models.DateTimeField("chosen at", db_index=True)
    # The network, never the address: /24 for IPv4, /48 for IPv6.
    ip_network = models.CharField("IP network", max_length=64, blank=True, default="")
    browser = models.CharField("browser family", max_length=40, blank=True, default="")
    method = models.CharField(max_length=16, choices=Method.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="cookie_choices",
    )

    class Meta:
        verbose_name = "cookie choice"
        ordering = ("-given_at",)

    def __str__(self) -> str:
        return f"{self.consent_id} {self.given_at:%Y-%m-%d %H:%M}"


# The active third parties, read by every page (the cookie banner's version and tags):
# kept in the cache with Redis (consent.state), forgotten on every write of a party, at
# once and again at the commit (a page rendered meanwhile may have kept the old rows).
THIRD_PARTIES_KEY = "tidings:third-parties"


def forget_third_parties() -> None:
    _forget(THIRD_PARTIES_KEY)
    transaction.on_commit(lambda: _forget(THIRD_PARTIES_KEY))


def _forget(key: str) -> None:
    # With Redis away nothing is read from it (consent.state) and a write goes on; what
    # it kept is forgotten at its expiry at the latest.
    with contextlib.suppress(redis.RedisError):
        cache.delete(key)


class ThirdPartyQuerySet(models.QuerySet["ThirdParty"]):
    """Writes in bulk forget the kept parties too (a save or a delete sends its signal)."""

    def update(self, **kwargs: Any) -> int:
        forget_third_parties()
        return super().update(**kwargs)

    def bulk_create(self, *args: Any, **kwargs: Any) -> Any:
        forget_third_parties()
        return super().bulk_create(*args, **kwargs)

    def bulk_update(self, *args: Any, **kwargs: Any) -> int:
        forget_third_parties()
        return super().bulk_update(*args, **kwargs)


class ThirdParty(models.Model):
    """A service that receives data from visitors' browsers (P27), announced first (P24)."""

    name = models.CharField(max_length=100, unique=True)
    category = models.CharField(max_length=16, choices=Category.choices)
    purpose = models.CharField(max_length=300)
    data_received = models.CharField(max_length=300)
    policy_url = models.URLField("privacy policy")
    opt_out_url = models.URLField("opt-out", blank=True, default="")
    # Only a script address: rendered as <script src>, never as HTML of the operator's.
    script_src = models.URLField("tag (script address)", blank=True, default="")
    host = models.CharField(max_length=255, blank=True, default="", editable=False)
    added_at = models.DateTimeField()
    effective_at = models.DateTimeField()
    announced_at = models.DateTimeField(null=True, blank=True, editable=False)
    active = models.BooleanField(default=True)

    objects = ThirdPartyQuerySet.as_manager()

    class Meta:
        verbose_name = "third party"
        verbose_name_plural = "third parties"
        ordering = ("effective_at", "name")

    def __str__(self) -> str:
        return self.name

    def save(self, *args: object, **kwargs: object) -> None:
        # Refused however it is saved (service, console, shell): a shorter notice would
        # let a third party take effect before the announced date the policy promises.
        errors = notice_errors(self)
        if errors:
            raise ValidationError(errors)
        self.host = (urlsplit(self.script_src).hostname or "") if self.script_src else ""
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def clean(self) -> None:
        errors = notice_errors(self)
        if self.script_src and self.is_server_side:
            errors["script_src"] = _("A service provider on the servers' side has no tag.")
        if errors:
            raise ValidationError(errors)

    @property
    def is_server_side(self) -> bool:
        return self.category in SERVER_SIDE


@receiver([post_save, post_delete], sender=ThirdParty)
def _third_party_written(**kwargs: Any) -> None:
    forget_third_parties()


def notice_errors(party: ThirdParty) -> dict[str, str]:
    """What is wrong with a party's notice period, by field (P24)."""
    least = timedelta(days=settings.MIN_SUBPROCESSOR_NOTICE_DAYS)
    if party.added_at is None or party.effective_at is None:
        return {}
    if party.effective_at - party.added_at < least:
        return {
            "effective_at": _(
                "A third party takes effect at least %(days)d days after it is announced, "
                "as the policy states."
            )
            % {"days": settings.MIN_SUBPROCESSOR_NOTICE_DAYS}
        }
    return {}


class PageView(models.Model):
    """How often a page was seen on one day: a counter, nothing about who saw it (P26)."""

    day = models.DateField()
    path = models.CharField(max_length=500)
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=("day", "path"), name="pageview_day_path")]
        ordering = ("-day", "-count")

    def __str__(self) -> str:
        return f"{self.day} {self.path}: {self.count}"


class PageViewFlush(models.Model):
    """A batch of page views moved out of Redis and written (`services.flush_page_views`):
    written in the same transaction as its counts, so a batch written by a flush killed
    before it could delete the batch is never written twice. Kept a day."""

    batch = models.CharField(max_length=64, unique=True)
    at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.batch} {self.at:%Y-%m-%d %H:%M}"
