"""An issued invoice or credit note is mailed to the account's users, its PDF attached,
once (posted under a key of the invoice). The ledger keeps the attachment's name only
("invoice:<id>"): the PDF is made when the message is built, from the frozen invoice."""

from __future__ import annotations

from tidings.accounts.mailability import account_users
from tidings.billing import pdf
from tidings.billing.models import Invoice
from tidings.core.mail import Attachment, Purpose, send_templated

SOURCE = "invoice"


def attachment_of(ref: str) -> Attachment | None:
    """The PDF of the issued invoice `ref` (None once it is gone)."""
    invoice = Invoice.objects.filter(pk=int(ref), status=Invoice.Status.ISSUED).first()
    if invoice is None:
        return None
    return Attachment(pdf.file_name(invoice), "application/pdf", pdf.render(invoice))


def mail_issued(invoice: Invoice) -> None:
    """Post the mail of a just issued `invoice`, in the issuing transaction (sent after
    its commit; nothing if it rolls back). Its users as the users' rule allows."""
    if invoice.account_id is None:
        return
    users = list(account_users(invoice.account_id, Purpose.SERVICE))
    send_templated(
        "billing/mail/invoice_issued",
        [u.email for u in users],
        {"invoice": invoice},
        purpose=Purpose.SERVICE,
        account_id=invoice.account_id,
        user_ids={u.email: u.pk for u in users},
        key=f"invoice:{invoice.pk}",
        attachments=(f"{SOURCE}:{invoice.pk}",),
    )
