"""Fixtures of the function tests: the folders staged and installed as func builds them."""

from __future__ import annotations

import pytest

from tests.functions.served import Installed, stage_and_install


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Every function folder after `make stage`, pip-installed as `function` into its own
    target directory (about 10 s for the four)."""
    return stage_and_install(tmp_path_factory.mktemp("func-build"))
