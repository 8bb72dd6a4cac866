"""Fixtures of the deploy tests."""

import shutil

import pytest

from tests.conftest import skip_or_fail_in_ci


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of promtool (Debian's prometheus package), which checks and tests the rules."""
    path = shutil.which("promtool")
    if path is None:
        skip_or_fail_in_ci("promtool is not installed (make sysdeps installs Debian's prometheus)")
    return path
