"""`function.env_seconds`: the durations the functions read from their environment."""

from __future__ import annotations

import pytest

from pickspin.adapters.function import env_seconds
from pickspin.core.errors import ConfigError


def test_unset_gives_the_default_and_a_number_is_read() -> None:
    assert env_seconds({}, "X", 5.0) == 5.0
    assert env_seconds({"X": "2.5"}, "X", 5.0) == 2.5
    assert env_seconds({"X": "0"}, "X", 5.0, zero_ok=True) == 0.0


@pytest.mark.parametrize(("raw", "zero_ok"), [("0", False), ("-1", True), ("nan", True),
                                              ("soon", False)])
def test_anything_else_is_a_config_error_naming_the_variable(raw: str, zero_ok: bool) -> None:
    with pytest.raises(ConfigError, match=f"X must be seconds .* not '{raw}'"):
        env_seconds({"X": raw}, "X", 1.0, zero_ok=zero_ok)
