from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "tidings.campaigns"
    label = "campaigns"

    def ready(self) -> None:
        from tidings.campaigns import privacy  # noqa: F401  (data map entries)
