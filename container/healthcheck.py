"""The image's HEALTHCHECK: the API must answer /healthz; any other stage must be running.

The stage is read from the container's main process (PID 1 is `weatherpipe STAGE ...`):
  api, up   GET http://127.0.0.1:PORT/healthz answers 200 within 3 s (PORT from --port,
            WEATHERPIPE_API_PORT or 8000; /healthz needs no token);
  others    the process is neither a zombie nor stopped (SIGSTOP), i.e. it can still make
            progress; a stage that exits ends its container, which the restart policy handles.
Exit status 0 healthy, 1 unhealthy, as Docker and Podman expect. Standard library only.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path


def main_process() -> list[str]:
    raw = Path("/proc/1/cmdline").read_bytes()
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def stage_of(argv: list[str]) -> str:
    """The first word after the `weatherpipe` program that is not an option."""
    names = [Path(arg).name for arg in argv]
    start = names.index("weatherpipe") + 1 if "weatherpipe" in names else 1
    return next((arg for arg in argv[start:] if not arg.startswith("-")), "")


def api_port(argv: list[str]) -> int:
    for i, arg in enumerate(argv):
        if arg == "--port" and i + 1 < len(argv):
            return int(argv[i + 1])
        if arg.startswith("--port="):
            return int(arg.split("=", 1)[1])
    return int(os.environ.get("WEATHERPIPE_API_PORT", "8000"))


def api_healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def process_healthy() -> bool:
    # /proc/1/stat: "PID (COMM) STATE ..."; COMM may hold spaces, so split after the last ')'.
    state = Path("/proc/1/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state not in {"Z", "T", "t", "X"}


def main() -> int:
    argv = main_process()
    if stage_of(argv) in {"api", "up"}:
        return 0 if api_healthy(api_port(argv)) else 1
    return 0 if process_healthy() else 1


if __name__ == "__main__":
    sys.exit(main())
