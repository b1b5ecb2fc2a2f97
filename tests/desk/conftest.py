"""The staff console's fixtures (verified staff with a stated reason), for the desk."""

from tests.staff.conftest import billing_staff, console  # noqa: F401
