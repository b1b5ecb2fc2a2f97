from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "tidings.accounts"
    label = "accounts"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_login_failed

        from tidings.accounts import privacy  # noqa: F401  (data map entries)
        from tidings.accounts.selectors import language_of
        from tidings.accounts.throttling import count_failure
        from tidings.core.mail import register_language_of

        register_language_of(language_of)

        user_login_failed.connect(count_failure, dispatch_uid="tidings-login-failures")
