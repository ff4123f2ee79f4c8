"""Shared pytest setup."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture
def pvdesk_home(tmp_path, monkeypatch) -> Path:
    """PVDESK_HOME pointed at ``tmp_path / "home"`` (not created: pvdesk makes what it needs)."""
    home = tmp_path / "home"
    monkeypatch.setenv("PVDESK_HOME", str(home))
    return home
