"""The audience's own error, in a module of its own so that every audience module (the
services, the attribute types) can raise it without importing one another."""


class AudienceError(ValueError):
    """A change that cannot be made; the message says why, in the customer's words."""
