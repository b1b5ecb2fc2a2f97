from pathlib import Path

from tidings.privacy.promises import PROMISES, proofs_by_promise, report


def test_promises_report_lists_every_promise_and_ends_with_the_count(tmp_path: Path):
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_a.py").write_text(
        "import pytest\n"
        "pytestmark = pytest.mark.promise('P2')\n"
        "@pytest.mark.promise('P1', 'P13')\n"
        "def test_one(): pass\n"
        "class TestGroup:\n"
        "    @pytest.mark.promise('P30')\n"
        "    def test_two(self): pass\n"
        "def helper(): pass\n"
    )
    proven = proofs_by_promise(tests)
    assert proven["P1"] == ["tests/test_a.py::test_one"]
    assert proven["P2"] == ["tests/test_a.py::test_one", "tests/test_a.py::TestGroup::test_two"]
    assert proven["P30"] == ["tests/test_a.py::TestGroup::test_two"]
    text = report(tests)
    assert text.splitlines()[-1] == "proven: 4/34"
    assert "NO TEST" in text
    assert len(PROMISES) == 34


def test_the_command_reads_this_repositorys_tests(capsys):
    from django.core.management import call_command

    call_command("promises")
    out = capsys.readouterr().out
    assert "test_closing_stops_processing_at_once" in out
    assert out.strip().splitlines()[-1].startswith("proven: ")


def test_the_promise_matrix_in_docs_is_current():
    tests = Path(__file__).resolve().parents[1]
    matrix = (tests.parent / "docs" / "promises.md").read_text()
    assert matrix.strip() == report(tests, markdown=True).strip(), (
        "docs/promises.md is stale: `tidings promises --markdown > docs/promises.md`"
    )
