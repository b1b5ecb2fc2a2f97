"""A data migration reads and writes the database it migrates, never "default": the
test settings migrate a second database (SQLite, `DATABASES["sqlite"]`) after the first,
and a migration that queried `Model.objects` there read PostgreSQL's tables, already
migrated past it ("column breaches_incident.escalated_hours does not exist": every test of
a full run errored at setup). Each model a RunPython gets from `apps.get_model` is asked
through `.using(schema_editor.connection.alias)`."""

from __future__ import annotations

import re
from pathlib import Path

import tidings

MIGRATIONS = sorted(Path(tidings.__file__).parent.glob("*/migrations/0*.py"))
# `Model.objects.` not followed by `using(`.
DEFAULT_MANAGER = re.compile(r"\b[A-Z]\w*\.objects\.(?!using\()")


def test_every_data_migration_uses_the_database_it_migrates():
    wrong = []
    for path in MIGRATIONS:
        text = path.read_text()
        if "apps.get_model" not in text:
            continue
        wrong += [
            f"{path.parent.parent.name}/{path.name}:{n}: {line.strip()}"
            for n, line in enumerate(text.splitlines(), 1)
            if DEFAULT_MANAGER.search(line)
        ]
    assert wrong == []


def test_the_check_finds_a_query_on_default():
    assert DEFAULT_MANAGER.search("    for i in Incident.objects.filter(x=1):")
    assert not DEFAULT_MANAGER.search("    for i in Incident.objects.using(db).filter(x=1):")
