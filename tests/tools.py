"""External tools some tests drive (promtool, Prometheus, Caddy, systemd-analyze, Chromium…).

On a developer's machine a missing tool skips the test, saying which Debian package brings
it. Under CI (the `CI` environment variable set to anything but `""`/`0`/`false`, as every
CI service does and `.ci/run` makes sure of) a missing tool **fails** the test instead:
`.ci/run` installs every one of them, so a skip there would only hide a broken install step.
"""

from __future__ import annotations

import os
import shutil

import pytest


def under_ci() -> bool:
    """True when the suite runs in CI, where every external tool must be present."""
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


def missing(reason: str) -> None:
    """Skip with `reason` on a developer's machine; fail with it under CI."""
    if under_ci():
        pytest.fail(f"{reason} — CI must install it (.ci/run)", pytrace=False)
    pytest.skip(reason)


def require_tool(name: str, package: str) -> str:
    """The path of executable `name`; skips (or fails under CI) naming the Debian `package`."""
    path = shutil.which(name)
    if path is None:
        missing(f"`{name}` is not installed (Debian package `{package}`)")
        raise AssertionError("unreachable")  # pytest.skip/fail raise
    return path
