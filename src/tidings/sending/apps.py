from django.apps import AppConfig


class SendingConfig(AppConfig):
    name = "tidings.sending"
    label = "sending"

    def ready(self) -> None:
        from tidings.core.mail import register_postman
        from tidings.sending import postman, privacy, signals  # noqa: F401  (data map, webhooks)

        register_postman(postman.accept)
