"""The test clock: a development setting moves the schedulers' time for every process at
once, production refuses to start with it, and with it off the time is the real one."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from tidings import cli
from tidings.core import clock


def _start(env: dict[str, str], tmp_path) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TIDINGS_", "DATABASE_URL"))}
    return subprocess.run(
        [sys.executable, "-c", "import tidings.settings"],
        env={**clean, "TIDINGS_DATA_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    "env",
    [
        {"TIDINGS_TEST_CLOCK": "true"},
        {"TIDINGS_TEST_CLOCK": "true", "TIDINGS_DEBUG": "true", "TIDINGS_SECURE": "true"},
    ],
    ids=["without debug", "with secure"],
)
def test_production_refuses_to_start_with_the_test_clock(env, tmp_path):
    started = _start(env, tmp_path)
    assert started.returncode != 0
    assert "TIDINGS_TEST_CLOCK" in started.stderr and "development only" in started.stderr
    assert _start({"TIDINGS_TEST_CLOCK": "true", "TIDINGS_DEBUG": "true"}, tmp_path).returncode == 0


def test_the_clock_moves_forward_only_and_comes_back(test_clock):
    before = timezone.now()
    assert test_clock.offset() == timedelta(0)
    test_clock.advance(test_clock.parse_step("2d"))
    test_clock.advance(test_clock.parse_step("90m"))
    assert test_clock.offset() == timedelta(days=2, minutes=90)
    assert test_clock.now() - before >= timedelta(days=2, minutes=90)
    for bad in ("", "2", "-1d", "2 days", "1y"):
        with pytest.raises(ValueError):
            test_clock.parse_step(bad)
    with pytest.raises(ValueError):
        test_clock.advance(timedelta(0))
    assert test_clock.offset() == timedelta(days=2, minutes=90)  # a refused move changes nothing
    test_clock.reset()
    assert test_clock.offset() == timedelta(0)


def test_with_the_setting_off_an_offset_left_behind_moves_nothing(test_clock, settings):
    test_clock.advance(timedelta(days=30))
    settings.TEST_CLOCK = False
    assert clock.offset() == timedelta(0)
    assert abs(clock.now() - timezone.now()) < timedelta(seconds=5)
    with pytest.raises(RuntimeError):
        clock.advance(timedelta(days=1))


def test_the_command_moves_the_clock_and_refuses_when_off(test_clock, settings, capsys):
    assert cli.main(["clock", "advance", "3d"]) == 0
    assert "3 days" in capsys.readouterr().out
    assert test_clock.offset() == timedelta(days=3)
    assert cli.main(["clock", "advance", "soon"]) == 2
    assert "not a duration" in capsys.readouterr().err
    assert cli.main(["clock", "reset"]) == 0
    assert test_clock.offset() == timedelta(0)
    settings.TEST_CLOCK = False
    assert cli.main(["clock", "advance", "1d"]) == 2
    assert "development only" in capsys.readouterr().err


def test_the_command_off_says_it_needs_the_settings_tidings_runs_with(settings, capsys):
    """Found walking the product: with Tidings started as the docs say, `tidings clock
    advance 2d` in another terminal (without the two variables) answered "start Tidings
    with TIDINGS_DEBUG=true TIDINGS_TEST_CLOCK=true", which it already was. The command
    reads its own environment: the answer says to give it the same settings."""
    settings.TEST_CLOCK = False
    assert cli.main(["clock", "advance", "2d"]) == 2
    err = capsys.readouterr().err
    assert "TIDINGS_DEBUG=true TIDINGS_TEST_CLOCK=true tidings clock advance 2d" in err
    assert "start Tidings with" not in err
