"""Errors a customer can cause with an import or export; each message says what to do."""


class TransferError(ValueError):
    """A request that cannot be carried out; the message is shown to the customer."""


class FileRejected(TransferError):
    """The uploaded file cannot be read as a table of contacts; nothing was imported."""


class UploadTooLarge(TransferError):
    """The upload passed the size limit while streaming; nothing was stored."""


class ImportInterrupted(RuntimeError):
    """Raised on purpose after a number of chunks, to prove that a re-run resumes."""


class ProcessingStopped(TransferError):
    """The account was closed while the job ran: it stops at once (P21)."""
