"""Whether the Kafka cluster answers, as one log line per change and a metric.

When the whole cluster goes away, aiokafka logs a refused connection several
times a second and nothing says what it means. A process that waits for
Kafka to come back runs a ``BrokerWatch`` beside its work: every ``every_s``
it asks the cluster for its metadata. It logs one warning when the cluster
stops answering, a reminder every ``remind_every_s`` with how long it has
been, and one line when it answers again; the gauge
``linkcast_kafka_reachable`` and the counters of outages and of their seconds
say the same to Prometheus. The watch only observes: the worker's own
clients reconnect by themselves.

``quiet_repeated_logs`` keeps aiokafka's own lines readable meanwhile: each
kind of line is logged once per ``window_s``, with a count of the ones held
back (one 44 s outage made 3,295 "Unable connect" lines in a worker's log).
"""

import asyncio
import logging
import time

from streams.admin import broker_answers
from streams.metrics import KAFKA_OUTAGE_SECONDS, KAFKA_OUTAGES, KAFKA_REACHABLE

log = logging.getLogger(__name__)


class RepeatFilter(logging.Filter):
    """Lets each (logger, level, message template) through once per ``window_s``."""

    def __init__(self, window_s: float = 10.0) -> None:
        super().__init__()
        self.window_s = window_s
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}  # -> (passed at, held)

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = record.created
        passed_at, held = self._seen.get(key, (float("-inf"), 0))
        if now - passed_at < self.window_s:
            self._seen[key] = (passed_at, held + 1)
            return False
        self._seen[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} [and {held} more like it in the {self.window_s:g} s before]"
        return True


def quiet_repeated_logs(prefix: str = "aiokafka", window_s: float = 10.0) -> None:
    """Put one RepeatFilter on every logger named ``prefix`` or below it (a logger's
    filters do not apply to its children's records, so each gets it)."""
    shared = RepeatFilter(window_s)
    names = [n for n in logging.Logger.manager.loggerDict if n.split(".")[0] == prefix]
    for name in {prefix, *names}:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RepeatFilter) for f in logger.filters):
            logger.addFilter(shared)


class BrokerWatch:
    """Checks the cluster every ``every_s`` and reports when that changes."""

    def __init__(
        self,
        bootstrap: str,
        every_s: float = 2.0,
        remind_every_s: float = 10.0,
        answer_within_s: float = 5.0,
    ) -> None:
        self.bootstrap = bootstrap
        self.every_s = every_s
        self.remind_every_s = remind_every_s
        self.answer_within_s = answer_within_s
        self.down_since: float | None = None  # monotonic time of the first failed check
        self._counted_until = 0.0  # outage seconds counted up to this monotonic time
        self._reminded_at = 0.0
        KAFKA_REACHABLE.set(1)

    async def run(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self.every_s)

    async def check(self) -> bool:
        """One check; returns whether the cluster answered."""
        up = await broker_answers(self.bootstrap, self.answer_within_s)
        self.observe(up, time.monotonic())
        return up

    def observe(self, up: bool, now: float) -> None:
        """Log and count a check's result (``now``: monotonic seconds)."""
        if self.down_since is not None:
            KAFKA_OUTAGE_SECONDS.inc(max(0.0, now - self._counted_until))
            self._counted_until = now
        if up:
            if self.down_since is not None:
                log.warning(
                    "Kafka at %s answers again after %.0f s unreachable; work resumes",
                    self.bootstrap,
                    now - self.down_since,
                )
                self.down_since = None
            KAFKA_REACHABLE.set(1)
            return
        KAFKA_REACHABLE.set(0)
        if self.down_since is None:
            self.down_since = self._counted_until = self._reminded_at = now
            KAFKA_OUTAGES.inc()
            log.warning(
                "Kafka at %s does not answer; records wait in Kafka and in this process "
                "until it does (nothing is dropped)",
                self.bootstrap,
            )
        elif now - self._reminded_at >= self.remind_every_s:
            self._reminded_at = now
            log.warning(
                "Kafka at %s has not answered for %.0f s; still waiting",
                self.bootstrap,
                now - self.down_since,
            )
