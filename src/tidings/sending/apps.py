from django.apps import AppConfig


class SendingConfig(AppConfig):
    name = "tidings.sending"
    label = "sending"

    def ready(self) -> None:
        from tidings.sending import privacy, signals  # noqa: F401  (data map, webhooks)
