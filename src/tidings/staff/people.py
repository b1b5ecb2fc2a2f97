"""The user as the staff app needs it. Staff sits below accounts in the layers
(accounts' User names staff roles), so the staff app names the shape it reads and
writes instead of importing the model: accounts' `User` has every member here."""

from __future__ import annotations

from typing import Any, Protocol


class Person(Protocol):
    """A login: a customer's user (`account_id` set) or one of the operator's people."""

    pk: Any
    account_id: int | None
    is_staff: bool
    is_superuser: bool
    staff_role: str
    groups: Any

    def save(self, *args: Any, **kwargs: Any) -> None: ...
