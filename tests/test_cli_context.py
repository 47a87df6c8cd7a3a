"""What every command shares: a date option is YYYY-MM-DD or a one-line refusal, exit 1."""

from __future__ import annotations

from datetime import date

import pytest
import typer

from api.cli.context import option_date


def test_a_date_option_is_read_or_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert option_date("2026-12-06", "--valid-from") == date(2026, 12, 6)
    assert option_date(None, "--valid-from") is None
    with pytest.raises(typer.Exit) as refused:
        option_date("2026-13-01", "--valid-until")
    assert refused.value.exit_code == 1
    assert capsys.readouterr().err == (
        "elicence: --valid-until 须为 YYYY-MM-DD / --valid-until must be YYYY-MM-DD\n"
    )
