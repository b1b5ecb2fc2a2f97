from django.apps import AppConfig


class BreachesConfig(AppConfig):
    name = "tidings.breaches"
    label = "breaches"

    def ready(self) -> None:
        from tidings.breaches import privacy  # noqa: F401
