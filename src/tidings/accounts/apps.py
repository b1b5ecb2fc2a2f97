from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "tidings.accounts"
    label = "accounts"

    def ready(self) -> None:
        from tidings.accounts import privacy  # noqa: F401  (data map entries)
