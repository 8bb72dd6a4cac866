"""`linkcast bench api`: GET /v1/links/{link} on one API process and core, beside bare Starlette.

Two servers run in turn, each one uvicorn process with one worker pinned to
CPU 0 (when the machine has two or more), with the same event loop (uvloop
when installed) and the HTTP parser `linkcast api` runs (api.httpserver:
h11 unless LINKCAST_API_HTTP_PARSER says httptools):

- **linkcast**: the real app (``create_app``) in production mode, serving a
  view filled with synthetic records (api.synthetic: ``--links`` links with
  60 windows, a forecast, and an alert on every tenth) instead of following
  Kafka, so the figure is the HTTP path alone: token check (a real JWT from
  POST /v1/token), rate limiter (its limit raised so that it never refuses),
  access log (JSON lines to a file) and metrics middleware, the route, the
  answer.
- **bare**: a Starlette app with one route returning, per link, the same
  JSON bytes (checked: the two answers are equal but for ``age_s``), made
  once at start; no token check, no middleware of its own (Starlette's
  default error and exception layers and its router, as any Starlette app
  has). It gets the same requests, Authorization header included.

linkcast's hot path is plain ASGI in front of FastAPI (api.fastpath), so it
skips the layers the bare app keeps: a ratio near or above 1 says that the
token check, rate limit, metrics and access log cost about what Starlette's
own per-request layers cost.

The load generator runs in a second process pinned to CPU 1:

- at the maximum rate: wrk (Debian's ``wrk``; a Lua script adds the
  Authorization header and walks through the links), or with
  ``--generator python`` (or no wrk installed) api.loadgen in closed loop;
- at a fixed rate (``--rate``, default 1,000 requests/s): api.loadgen in
  open loop, latency counted from when each request was due.

Both phases are preceded by a short warm-up that is not counted. Any answer
other than 200, or a connection error, voids the run (BenchError). With
``--repeat N`` the targets alternate N times and each reports its median run
(by max-rate requests/s): this machine's other work comes and goes.

It prints the figures and, last, one JSON line; the full result (each run,
host, settings) goes to ``--out``.
"""

import argparse
import contextlib
import json
import logging
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from producers.cli import positive_float, positive_int
from streams.exceptions import LinkcastError

BENCH_CLIENT = "bench"
WARMUP_S = 1.0
GOAL_RPS = 5000.0
GOAL_P99_MS = 5.0
GOAL_RATIO = 0.8
TARGETS = ("linkcast", "bare")

WRK_SCRIPT = """
local paths = {%(paths)s}
local i = 0
wrk.headers["Authorization"] = "%(authorization)s"
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nRESULT {"requests":%%d,"duration_us":%%d,"errors":%%d,"non_2xx":%%d,' ..
    '"p50_us":%%d,"p99_us":%%d,"max_us":%%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


class BenchError(LinkcastError):
    """The API benchmark could not measure, or measured a broken run."""


@dataclass(frozen=True)
class Plan:
    links: int
    duration_s: float
    connections: int
    rate: float
    generator: str  # "wrk" or "python"
    server_core: int | None
    load_core: int | None
    now_s: float  # both servers' synthetic data end here, so their JSON is the same


def register(benches: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add `api` to the `linkcast bench` group."""
    api = benches.add_parser(
        "api",
        help="GET /v1/links/{link} requests/s and latency on one core, beside bare Starlette",
        description="Serve GET /v1/links/{link} from one API process on one core, under a load "
        "generator in a second process, beside a bare Starlette endpoint with the same JSON. "
        "Prints requests/s, p50/p99 at the maximum rate and p99 at --rate, writes JSON to --out "
        "and prints one JSON object as the last line.",
    )
    api.add_argument("--duration", type=positive_float, default=10.0, help="s per phase (10)")
    api.add_argument("--links", type=positive_int, default=1000, help="links in the view (1000)")
    api.add_argument("--connections", type=positive_int, default=32, help="at max rate (32)")
    api.add_argument("--rate", type=positive_float, default=1000.0, help="fixed rate, req/s")
    api.add_argument(
        "--generator",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="max-rate load generator: wrk, or linkcast's own (auto: wrk if installed)",
    )
    api.add_argument(
        "--repeat", type=positive_int, default=1, help="runs of each; the median counts (1)"
    )
    api.set_defaults(func=run_api_bench)


def run_api_bench(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Run the bench; return its result line, its full record and its result file's name."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    plan = _plan(args)
    where = (
        f"server on CPU {plan.server_core}, load on CPU {plan.load_core}"
        if plan.server_core is not None
        else "one CPU: server and load share it (figures are lower)"
    )
    print(
        f"bench api: {plan.links} links, {plan.duration_s:g} s per phase, "
        f"max rate with {plan.generator} ({plan.connections} connections), "
        f"fixed rate {plan.rate:g}/s; {where}",
        flush=True,
    )
    every: dict[str, list[dict[str, Any]]] = {t: [] for t in TARGETS}
    answers: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="linkcast-bench-api-") as tmp:
        for n in range(1, args.repeat + 1):
            if args.repeat > 1:
                print(f" run {n}/{args.repeat}", flush=True)
            for target in TARGETS:  # alternating, so that a noisy moment hits both
                run, answers[target] = _measure(target, plan, Path(tmp))
                every[target].append(run)
    _check_same_json(answers)
    runs = {t: median_run(every[t]) for t in TARGETS}
    result = summary(runs, plan)
    result["repeat"] = args.repeat
    result["statistic"] = "median"
    full = {
        **result,
        "runs": runs,
        "all_runs": every,
        "plan": plan.__dict__,
        "host": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "event_loop": _module_version("uvloop") or "asyncio",
            "http_parser": "httptools" if _module_version("httptools") else "h11",
        },
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    _report(runs, result)
    return result, full, "api.json"


def _plan(args: argparse.Namespace) -> Plan:
    wrk = shutil.which("wrk")
    if args.generator == "wrk" and wrk is None:
        raise BenchError("wrk is not installed (Debian: apt-get install wrk; make sysdeps does)")
    generator = "wrk" if args.generator in ("auto", "wrk") and wrk else "python"
    cpus = sorted(os.sched_getaffinity(0))
    server_core, load_core = (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)
    return Plan(
        args.links,
        args.duration,
        args.connections,
        args.rate,
        generator,
        server_core,
        load_core,
        time.time(),
    )


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run in the middle by max-rate requests/s; of an even number, the slower middle one."""
    return sorted(runs, key=lambda r: r["max"]["rps"])[(len(runs) - 1) // 2]


def summary(runs: dict[str, dict[str, Any]], plan: Plan) -> dict[str, Any]:
    """The result object: value, unit, baseline, ratio, latencies and the goals."""
    mine, bare = runs["linkcast"], runs["bare"]
    value, baseline = mine["max"]["rps"], bare["max"]["rps"]
    if not baseline:
        raise BenchError("the bare endpoint answered nothing: nothing to compare with")
    ratio = value / baseline
    at_rate = mine["fixed"]["p99_ms"]
    return {
        "bench": "api",
        "value": value,
        "unit": "requests/s",
        "baseline": baseline,
        "ratio": ratio,
        "p50_ms": mine["max"]["p50_ms"],
        "p99_ms": mine["max"]["p99_ms"],
        "rate": plan.rate,
        "p99_ms_at_rate": at_rate,
        "baseline_p50_ms": bare["max"]["p50_ms"],
        "baseline_p99_ms": bare["max"]["p99_ms"],
        "baseline_p99_ms_at_rate": bare["fixed"]["p99_ms"],
        "baseline_name": "bare Starlette, same JSON",
        "generator": plan.generator,
        "connections": plan.connections,
        "duration_s": plan.duration_s,
        "links": plan.links,
        "goals": {
            f"requests_per_s>={GOAL_RPS:g}": value >= GOAL_RPS,
            f"p99_ms_at_1000/s<={GOAL_P99_MS:g}": plan.rate == 1000 and at_rate <= GOAL_P99_MS,
            f"ratio>={GOAL_RATIO:g}": ratio >= GOAL_RATIO,
        },
    }


# ---- one target -----------------------------------------------------------------


def _measure(target: str, plan: Plan, tmp: Path) -> tuple[dict[str, Any], Any]:
    """Start the target's server, load it (warm-up, max rate, fixed rate), stop it."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = _server_env(target, tmp, port)
    log = tmp / f"{target}.log"
    with _server(target, plan, port, env, log):
        _wait_until_up(base, log)
        if target == "linkcast":
            bearer = _token(base, env["LINKCAST_BENCH_SECRET"])
        else:  # the same request bytes: a token of the same shape, which bare ignores
            bearer = _unchecked_token()
        headers = {"Authorization": f"Bearer {bearer}"}
        probe = httpx.get(f"{base}/v1/links/link-0000", headers=headers, timeout=5)
        if probe.status_code != 200:
            raise BenchError(f"{target}: GET /v1/links/link-0000 answered {probe.status_code}")
        paths = [f"/v1/links/link-{i:04d}" for i in range(plan.links)]
        print(f"  {target}: warming up", flush=True)
        _max_rate(base, paths, headers, plan, WARMUP_S, tmp)
        print(f"  {target}: maximum rate ({plan.duration_s:g} s)", flush=True)
        top = _checked(target, "max", _max_rate(base, paths, headers, plan, plan.duration_s, tmp))
        print(f"  {target}: fixed rate {plan.rate:g}/s ({plan.duration_s:g} s)", flush=True)
        _fixed_rate(base, paths, headers, plan, WARMUP_S)
        fixed = _checked(target, "fixed", _fixed_rate(base, paths, headers, plan, plan.duration_s))
    return {"max": top, "fixed": fixed}, probe.json()


def _unchecked_token() -> str:
    from api.auth import TokenIssuer

    issuer = TokenIssuer(secrets.token_bytes(48), "linkcast", "linkcast-api", ttl_s=900)
    return issuer.issue(BENCH_CLIENT, ["read"])


def _checked(target: str, phase: str, run: dict[str, Any]) -> dict[str, Any]:
    if run["non_2xx"] or run["errors"] or not run["requests"]:
        raise BenchError(
            f"{target}, {phase} rate: {run['requests']} requests, {run['non_2xx']} not 2xx, "
            f"{run['errors']} errors; the run does not count"
        )
    return run


def _server_env(target: str, tmp: Path, port: int) -> dict[str, str]:
    secret = secrets.token_urlsafe(24)
    if target != "linkcast":
        return {**os.environ, "LINKCAST_BENCH_SECRET": secret}
    from api.auth import hash_secret

    clients = tmp / "clients.json"
    entry = {"id": BENCH_CLIENT, "secret_hash": hash_secret(secret), "scopes": ["read"]}
    clients.write_text(json.dumps({"clients": [entry]}))
    return {
        **os.environ,
        "LINKCAST_API_MODE": "production",
        "LINKCAST_API_JWT_KEY": secrets.token_urlsafe(48),
        "LINKCAST_API_CLIENTS_FILE": str(clients),
        "LINKCAST_API_RATE_PER_S": "1e9",  # the limiter runs, but never refuses the bench
        "LINKCAST_API_RATE_BURST": "1000000000",
        "LINKCAST_API_HOST": "127.0.0.1",
        "LINKCAST_API_PORT": str(port),
        "LINKCAST_BENCH_SECRET": secret,
    }


@contextlib.contextmanager
def _server(target: str, plan: Plan, port: int, env: dict[str, str], log: Path) -> Iterator[None]:
    command = [sys.executable, "-m", "api.benchserver", target, "--port", str(port)]
    command += ["--links", str(plan.links), "--now", repr(plan.now_s)]
    if plan.server_core is not None:
        command += ["--core", str(plan.server_core)]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_until_up(base: str, log: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise BenchError(f"the bench server at {base} did not come up in {timeout_s:g} s:\n{tail}")


def _token(base: str, secret: str) -> str:
    answer = httpx.post(
        f"{base}/v1/token",
        data={"grant_type": "client_credentials", "scope": "read"},
        auth=(BENCH_CLIENT, secret),
        timeout=10,
    )
    if answer.status_code != 200:
        raise BenchError(f"POST /v1/token answered {answer.status_code}: {answer.text}")
    token: str = answer.json()["access_token"]
    return token


# ---- load generators ---------------------------------------------------------------


def _max_rate(
    base: str,
    paths: list[str],
    headers: dict[str, str],
    plan: Plan,
    duration_s: float,
    tmp: Path,
) -> dict[str, Any]:
    if plan.generator == "python":
        return _loadgen(base, paths, headers, plan, duration_s, rate=None)
    script = tmp / "bench.lua"
    script.write_text(
        WRK_SCRIPT
        % {
            "paths": ", ".join(json.dumps(p) for p in paths),
            "authorization": headers.get("Authorization", ""),
        }
    )
    command = ["wrk", "-t1", f"-c{plan.connections}", f"-d{max(1, round(duration_s))}s"]
    command += ["--timeout", "5s", "-s", str(script), base]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=duration_s + 60, preexec_fn=_pin(plan)
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    raw = json.loads(line[len("RESULT ") :])
    seconds = raw["duration_us"] / 1e6
    return {
        "requests": raw["requests"],
        "ok": raw["requests"] - raw["non_2xx"],
        "non_2xx": raw["non_2xx"],
        "errors": raw["errors"],
        "seconds": round(seconds, 3),
        "rps": round(raw["requests"] / seconds, 1) if seconds else 0.0,
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
    }


def _fixed_rate(
    base: str, paths: list[str], headers: dict[str, str], plan: Plan, duration_s: float
) -> dict[str, Any]:
    return _loadgen(base, paths, headers, plan, duration_s, rate=plan.rate)


def _loadgen(
    base: str,
    paths: list[str],
    headers: dict[str, str],
    plan: Plan,
    duration_s: float,
    rate: float | None,
) -> dict[str, Any]:
    command = [sys.executable, "-m", "api.loadgen", base, "--duration", str(duration_s)]
    command += [f"--path={p}" for p in paths]
    command += [f"--header={k}: {v}" for k, v in headers.items()]
    command += ["--connections", str(16 if rate else plan.connections)]
    if rate:
        command += ["--rate", str(rate)]
    if plan.load_core is not None:
        command += ["--core", str(plan.load_core)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration_s + 60)
    if done.returncode != 0:
        raise BenchError(f"the load generator failed ({done.returncode}):\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _pin(plan: Plan) -> Any:
    core = plan.load_core
    if core is None:
        return None
    return lambda: os.sched_setaffinity(0, {core})


# ---- small things ----------------------------------------------------------------------


def _check_same_json(answers: dict[str, Any]) -> None:
    """The bare endpoint must answer what linkcast answers (age_s moves with the clock)."""
    mine, bare = ({k: v for k, v in answers[t].items() if k != "age_s"} for t in TARGETS)
    if mine != bare:
        raise BenchError("the bare endpoint's JSON differs from linkcast's; the ratio would lie")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _module_version(name: str) -> str | None:
    try:
        module = __import__(name)
    except ImportError:
        return None
    return f"{name} {getattr(module, '__version__', '?')}"


def _report(runs: dict[str, dict[str, Any]], result: dict[str, Any]) -> None:
    rate = result["rate"]
    for target in TARGETS:
        top, fixed = runs[target]["max"], runs[target]["fixed"]
        print(
            f"{target:9} max {top['rps']:>9,.0f} req/s  p50 {top['p50_ms']:6.2f} ms  "
            f"p99 {top['p99_ms']:6.2f} ms   at {rate:g}/s: p50 {fixed['p50_ms']:5.2f} ms  "
            f"p99 {fixed['p99_ms']:5.2f} ms  ({fixed['requests']} requests, "
            f"{fixed['late_starts']} started late)"
        )
    print(f"ratio     linkcast / bare requests/s = {result['ratio']:.3f}")
    for goal, met in result["goals"].items():
        print(f"goal {goal}: {'met' if met else 'NOT met'}")
