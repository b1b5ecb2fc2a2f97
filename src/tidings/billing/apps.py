from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "tidings.billing"
    label = "billing"

    def ready(self) -> None:
        from tidings.billing import invoice_mail, privacy  # noqa: F401
        from tidings.core.mail import register_attachments

        register_attachments(invoice_mail.SOURCE, invoice_mail.attachment_of)
