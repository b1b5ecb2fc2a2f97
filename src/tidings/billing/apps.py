from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "tidings.billing"
    label = "billing"

    def ready(self) -> None:
        from tidings.accounts import services as accounts
        from tidings.billing import cancellation, invoice_mail, privacy  # noqa: F401
        from tidings.core.mail import register_attachments

        register_attachments(invoice_mail.SOURCE, invoice_mail.attachment_of)
        # Closing an account cancels its plans, here and at the gateway (Stripe).
        accounts.on_account_closed(cancellation.account_closed)
