"""Fixtures of the container tests: Podman present (a failure under CI=true), the image built."""

from __future__ import annotations

import pytest

from tests.containers import podman
from weatherpipe.testing import in_ci


@pytest.fixture(scope="session")
def image() -> str:
    """The project's image, built by `make image` (layers cached between runs)."""
    reason = podman.missing_tools()
    if reason is not None:
        if in_ci():
            pytest.fail(f"{reason} (CI=true: a missing tool is a failure)")
        pytest.skip(f"SKIPPED LOUDLY: {reason}")
    seconds = podman.build_image()
    print(f"make image: {seconds:.1f} s")
    return podman.IMAGE


@pytest.fixture(scope="session")
def standins(image: str) -> None:
    podman.build_standins()
