from django.apps import AppConfig


class DeskConfig(AppConfig):
    name = "tidings.desk"
    label = "desk"

    def ready(self) -> None:
        from tidings.accounts import services as accounts
        from tidings.desk import followups, privacy  # noqa: F401

        # Switching follow-ups off in My Account cancels the pending ones (P18).
        accounts.on_processing_change(followups.processing_changed)
