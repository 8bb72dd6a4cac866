"""The container's health check: asks the running role's own web port.

One image runs every role; the command picks it (``linkcast worker``, ``linkcast api``,
``linkcast simulate`` ...). This looks at the container's main process (PID 1) to
learn the role and asks:

- a worker: ``GET /`` on its Faust web port (``LINKCAST_WORKER_PORT``), which answers
  ``{"status": "OK"}`` once the worker's web server runs;
- the API: ``GET /health`` on ``LINKCAST_API_PORT``;
- anything else (topic creation, producers, one-shot tools): nothing to ask, healthy
  while it runs.

Exit 0 when healthy, 1 otherwise (Docker's HEALTHCHECK contract).
``python -m deploy.healthcheck``
"""

import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path

ANY_ADDRESS = {"", "0.0.0.0", "::", "[::]"}


def role_of(cmdline: Sequence[str]) -> str | None:
    """The server role of a ``linkcast`` command line: 'worker', 'api' or None.

    ``cmdline`` is the process's argv, e.g. ``["/opt/linkcast/bin/python",
    "/opt/linkcast/bin/linkcast", "api"]``; ``linkcast api hash-secret`` is no server.
    """
    for i, arg in enumerate(cmdline):
        if Path(arg).name == "linkcast":
            rest = list(cmdline[i + 1 :])
            if rest == ["worker"]:
                return "worker"
            if rest == ["api"]:
                return "api"
            return None
    return None


def probe_url(role: str) -> str:
    """The URL that says whether ``role`` is healthy, from its settings (LINKCAST_*)."""
    if role == "worker":
        from streams.settings import StreamSettings

        worker = StreamSettings()
        return f"http://{_local(worker.worker_host)}:{worker.worker_port}/"
    from api.settings import ApiSettings

    api = ApiSettings()
    return f"http://{_local(api.api_host)}:{api.api_port}/health"


def _local(host: str) -> str:
    """Where to reach a server bound to ``host`` from inside its own container."""
    return "127.0.0.1" if host in ANY_ADDRESS else host


def main_cmdline() -> list[str]:
    """The argv of the container's main process (PID 1)."""
    parts = Path("/proc/1/cmdline").read_bytes().split(b"\0")
    return [part.decode(errors="replace") for part in parts if part]


def main() -> int:
    try:
        cmdline = main_cmdline()
    except OSError as exc:
        print(f"healthcheck: cannot read the main process's command line: {exc}")
        return 1
    role = role_of(cmdline)
    if role is None:
        return 0
    url = probe_url(role)
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            healthy = bool(200 <= response.status < 300)
    except OSError as exc:  # refused, timed out, or an HTTP error status
        print(f"healthcheck: {role} at {url}: {exc}")
        return 1
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
