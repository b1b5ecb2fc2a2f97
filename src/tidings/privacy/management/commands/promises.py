"""`tidings promises`: each promise with the tests that prove it, and the count."""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from tidings.privacy.promises import report


def find_tests_dir() -> Path | None:
    """The repository's tests/ folder: beside the source tree, or under the current one."""
    here = Path(__file__).resolve()
    for candidate in [*(p / "tests" for p in here.parents), Path.cwd() / "tests"]:
        if (candidate / "conftest.py").exists():
            return candidate
    return None


class Command(BaseCommand):
    help = "Print every privacy promise with the tests that prove it."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--markdown", action="store_true", help="a Markdown table for docs/")
        parser.add_argument("--tests", type=Path, help="the tests folder (found by default)")

    def handle(self, *args: Any, markdown: bool, tests: Path | None, **options: Any) -> None:
        tests = tests or find_tests_dir()
        if tests is None:
            raise CommandError(
                "No tests folder found: run from a checkout of Tidings, or pass --tests."
            )
        self.stdout.write(report(tests, markdown=markdown))
