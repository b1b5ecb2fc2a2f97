from django.apps import AppConfig


class DeskConfig(AppConfig):
    name = "tidings.desk"
    label = "desk"

    def ready(self) -> None:
        from anymail.signals import inbound as provider_inbound

        from tidings.accounts import services as accounts
        from tidings.core import fields
        from tidings.desk import followups, inbound, privacy, search  # noqa: F401

        # `tidings rotate-keys` rebuilds the search index under the newest key.
        fields.after_rotation(search.rebuild)

        # Switching follow-ups off in My Account cancels the pending ones (P18).
        accounts.on_processing_change(followups.processing_changed)
        # Mail to the support address through a provider's inbound webhook.
        provider_inbound.connect(inbound.on_provider_inbound, dispatch_uid="tidings.desk")
