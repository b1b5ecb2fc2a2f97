from typing import Any

from django.apps import AppConfig
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from tidings.desk import worktime


def sla_settings(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    """The SLA clocks' settings (working hours, holidays, targets) read once at start:
    a bad one is named before Tidings runs, not at the first conversation."""
    try:
        worktime.check_settings()
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), id="desk.E001")]
    return []


class DeskConfig(AppConfig):
    name = "tidings.desk"
    label = "desk"
    verbose_name = "Support desk"  # translated at display (privacy/labels.py)

    def ready(self) -> None:
        from anymail.signals import inbound as provider_inbound

        from tidings.accounts import services as accounts
        from tidings.core import fields
        from tidings.desk import followups, inbound, privacy, search  # noqa: F401

        # `tidings rotate-keys` rebuilds the search index under the newest key.
        fields.after_rotation(search.rebuild)
        checks.register(sla_settings)

        # Switching follow-ups off in My Account cancels the pending ones (P18).
        accounts.on_processing_change(followups.processing_changed)
        # Mail to the support address through a provider's inbound webhook.
        provider_inbound.connect(inbound.on_provider_inbound, dispatch_uid="tidings.desk")
