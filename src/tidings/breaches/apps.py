from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class BreachesConfig(AppConfig):
    name = "tidings.breaches"
    label = "breaches"

    def ready(self) -> None:
        from tidings.breaches import privacy  # noqa: F401
        from tidings.breaches.obligations import JURISDICTIONS

        unknown = sorted(set(settings.BREACHES["jurisdictions"]) - JURISDICTIONS)
        if unknown:
            raise ImproperlyConfigured(
                f"TIDINGS_BREACH_JURISDICTIONS: no breach rules for {', '.join(unknown)} "
                f"(known: {', '.join(sorted(JURISDICTIONS))})"
            )
