from django.apps import AppConfig


class StaffConfig(AppConfig):
    name = "tidings.staff"
    label = "staff"
    verbose_name = "Staff and audit"

    def ready(self) -> None:
        from tidings.staff import privacy  # noqa: F401
