from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "tidings.core"
    label = "core"
    verbose_name = "Tidings core"

    def ready(self) -> None:
        from tidings.core import baseurl

        baseurl.warn_if_insecure()
