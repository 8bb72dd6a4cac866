"""The benchmark's own HTTP load generator: keep-alive HTTP/1.1 over asyncio, in its own process.

Two modes:

- ``--rate R``: open loop. Request ``k`` is due at ``start + k / R``
  whatever happened to earlier ones, and its latency runs from when it was
  due, not from when a connection was free, so a server that falls behind is
  charged for the wait (no coordinated omission). Up to ``--connections``
  requests are in flight.
- no ``--rate``: closed loop, as fast as the server answers, one request in
  flight per connection (what wrk does; used when wrk is not installed).

It prints one JSON object: requests, ok (2xx), non_2xx, errors, seconds,
rps, p50_ms, p99_ms, max_ms. A load generator that cannot keep its schedule
says so (``late_starts``: requests started more than 1 ms after they were due).
"""

import argparse
import asyncio
import json
import os
import time
from urllib.parse import urlsplit


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def get(self, request: bytes) -> int:
        """Send one request; return the status once the whole answer is read."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return status


class Results:
    def __init__(self) -> None:
        self.latencies_s: list[float] = []
        self.ok = self.non_2xx = self.errors = self.late_starts = 0

    def add(self, status: int, latency_s: float) -> None:
        self.latencies_s.append(latency_s)
        if 200 <= status < 300:
            self.ok += 1
        else:
            self.non_2xx += 1

    def summary(self, seconds: float) -> dict[str, float | int]:
        ordered = sorted(self.latencies_s)
        n = len(ordered)

        def pct(p: float) -> float:
            return round(ordered[min(n - 1, int(p * n))] * 1000, 3) if n else 0.0

        return {
            "requests": n,
            "ok": self.ok,
            "non_2xx": self.non_2xx,
            "errors": self.errors,
            "late_starts": self.late_starts,
            "seconds": round(seconds, 3),
            "rps": round(n / seconds, 1) if seconds > 0 else 0.0,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "max_ms": round(ordered[-1] * 1000, 3) if n else 0.0,
        }


def requests_for(url: str, paths: list[str], headers: dict[str, str]) -> list[bytes]:
    host = urlsplit(url).netloc
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return [f"GET {p} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode() for p in paths]


async def connect(url: str, n: int) -> list[Connection]:
    parts = urlsplit(url)
    out = []
    for _ in range(n):
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        out.append(Connection(reader, writer))
    return out


async def open_loop(
    url: str, requests: list[bytes], rate: float, duration_s: float, connections: int
) -> dict[str, float | int]:
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for c in await connect(url, connections):
        pool.put_nowait(c)
    results = Results()
    total = int(rate * duration_s)
    start = time.perf_counter() + 0.05
    tasks = []

    async def one(k: int, due: float) -> None:
        conn = await pool.get()
        if time.perf_counter() - due > 0.001:
            results.late_starts += 1
        try:
            status = await conn.get(requests[k % len(requests)])
        except (OSError, asyncio.IncompleteReadError, ValueError):
            results.errors += 1
            return  # the connection is lost with the error
        results.add(status, time.perf_counter() - due)
        pool.put_nowait(conn)

    for k in range(total):
        due = start + k / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(k, due)))
    await asyncio.gather(*tasks)
    return results.summary(time.perf_counter() - start)


async def closed_loop(
    url: str, requests: list[bytes], duration_s: float, connections: int
) -> dict[str, float | int]:
    results = Results()
    start = time.perf_counter()
    stop_at = start + duration_s

    async def worker(conn: Connection, offset: int) -> None:
        k = offset
        while time.perf_counter() < stop_at:
            sent = time.perf_counter()
            try:
                status = await conn.get(requests[k % len(requests)])
            except (OSError, asyncio.IncompleteReadError, ValueError):
                results.errors += 1
                return
            results.add(status, time.perf_counter() - sent)
            k += connections

    conns = await connect(url, connections)
    await asyncio.gather(*(worker(c, i) for i, c in enumerate(conns)))
    return results.summary(time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="base URL, e.g. http://127.0.0.1:8000")
    parser.add_argument("--path", action="append", required=True, help="paths, used in turn")
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    parser.add_argument("--rate", type=float, help="requests/s (open loop); none: closed loop")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--core", type=int, help="run on this CPU only")
    args = parser.parse_args()
    if args.core is not None:
        os.sched_setaffinity(0, {args.core})
    headers = dict(h.split(": ", 1) for h in args.header)
    requests = requests_for(args.url, args.path, headers)
    if args.rate:
        work = open_loop(args.url, requests, args.rate, args.duration, args.connections)
    else:
        work = closed_loop(args.url, requests, args.duration, args.connections)
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(work)
    else:
        result = uvloop.run(work)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
