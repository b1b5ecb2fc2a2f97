from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "tidings.accounts"
    label = "accounts"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_login_failed

        from tidings.accounts import privacy  # noqa: F401  (data map entries)
        from tidings.accounts.throttling import count_failure

        user_login_failed.connect(count_failure, dispatch_uid="tidings-login-failures")
