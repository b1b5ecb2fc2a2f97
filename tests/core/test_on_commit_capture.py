"""The suite's on-commit capture (tests/commits.py) behaves as a commit in production."""

from __future__ import annotations

import pytest
from django.db import transaction


def test_callbacks_run_when_the_outermost_block_commits(on_commit_runs):  # type: ignore[no-untyped-def]
    ran: list[str] = []
    with transaction.atomic():
        transaction.on_commit(lambda: ran.append("outer"))
        with transaction.atomic():
            transaction.on_commit(lambda: ran.append("inner"))
        assert ran == []  # not before the outermost block ends
    assert ran == ["outer", "inner"]
    transaction.on_commit(lambda: ran.append("outside"))  # autocommit: at once
    assert ran == ["outer", "inner", "outside"]


def test_a_rolled_back_block_drops_its_callbacks_only(on_commit_runs):  # type: ignore[no-untyped-def]
    ran: list[str] = []
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        transaction.on_commit(lambda: ran.append("lost"))
        1 / 0  # noqa: B018
    with transaction.atomic():
        transaction.on_commit(lambda: ran.append("kept"))
        with pytest.raises(ValueError), transaction.atomic():
            transaction.on_commit(lambda: ran.append("rolled back"))
            raise ValueError
    assert ran == ["kept"]


@pytest.mark.django_db
def test_without_it_a_test_transaction_runs_none_as_django_does():
    ran: list[str] = []
    with transaction.atomic():
        transaction.on_commit(lambda: ran.append("never"))
    transaction.on_commit(lambda: ran.append("never either"))
    assert ran == []
