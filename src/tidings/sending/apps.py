from django.apps import AppConfig


class SendingConfig(AppConfig):
    name = "tidings.sending"
    label = "sending"

    def ready(self) -> None:
        from tidings.audience.segments import register_engagement
        from tidings.audience.timeline import register_source
        from tidings.core.mail import register_postman
        from tidings.sending import postman, privacy, signals  # noqa: F401  (data map, webhooks)
        from tidings.sending.timeline import contact_events
        from tidings.sending.tracking import engagement_events

        register_postman(postman.accept)
        register_engagement(engagement_events)
        register_source("sending", contact_events)
