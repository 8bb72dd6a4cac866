"""Hot swap: every worker follows the models topic and loads each announced version.

``linkcast models promote`` (or ``rollback``, or ``announce``) makes a version
current in the registry and announces it on ``<prefix>.models`` (compacted,
keyed by the model kind). Each worker reads that topic from the beginning with
its own consumer, outside the consumer group, so every worker sees every
announcement (at start, only the newest of each kind counts: the topic, not a
registry's ``current.json``, says what a running deployment uses; a change
made with ``--no-announce`` reaches workers when it is announced); it loads
the named version from its own registry
(``LINKCAST_MODELS_DIR``), which verifies the artifacts' sha256 and feature
schema, and swaps it in between two records. A version that cannot be loaded
is logged and counted, and the worker keeps the model it has: a bad
announcement never stops the stream.
"""

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import Counter
from pydantic import ValidationError

from streams.schemas import ModelAnnouncement

log = logging.getLogger(__name__)

MODEL_SWAPS = Counter(
    "linkcast_model_swaps_total", "Model versions loaded from announcements", ["kind"]
)
MODEL_SWAP_FAILURES = Counter(
    "linkcast_model_swap_failures_total",
    "Announced model versions that could not be loaded (the previous one stays)",
    ["kind"],
)


class ModelFollower:
    """Reads announcements and calls ``on_load(kind, loaded_model)`` for each new version.

    ``on_load`` may refuse a model by raising; the model in use then stays.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        models_dir: Path,
        current: Callable[[str], str | None],
        on_load: Callable[[str, Any], None],
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.models_dir = models_dir
        self.current = current  # kind -> version in use (None: that kind is not used)
        self.on_load = on_load

    async def apply(self, value: bytes | None) -> None:
        """Handle one message of the models topic (loading happens in a thread)."""
        if value is None:
            return
        try:
            announcement = ModelAnnouncement.model_validate_json(value)
        except ValidationError as exc:
            log.warning("ignoring an invalid model announcement: %s", exc.errors()[0]["msg"])
            return
        kind, version = announcement.kind, announcement.version
        in_use = self.current(kind)
        if in_use is None or in_use == version:
            return
        try:
            loaded = await asyncio.to_thread(_load, self.models_dir, kind, version)
            self.on_load(kind, loaded)  # may refuse it too (a forecaster without a horizon)
        except Exception as exc:  # any failure keeps the old model; the log says why
            MODEL_SWAP_FAILURES.labels(kind=kind).inc()
            log.error(
                "keeping %s %s: announced version %s cannot be used: %s",
                kind,
                in_use,
                version,
                exc,
            )
            return
        MODEL_SWAPS.labels(kind=kind).inc()
        log.info("now using %s %s (was %s)", kind, version, in_use)

    async def run(self) -> None:
        """Follow the topic until cancelled; reconnects after broker errors."""
        while True:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
            )
            try:
                await consumer.start()
                partitions = consumer.partitions_for_topic(self.topic) or {0}
                tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
                consumer.assign(tps)
                await consumer.seek_to_beginning(*tps)
                await self._catch_up(consumer, tps)
                while True:
                    batches = await consumer.getmany(timeout_ms=1000)
                    for messages in batches.values():
                        for message in messages:
                            await self.apply(message.value)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker may come back
                log.warning("following %s failed, retrying in 2 s: %r", self.topic, exc)
                await asyncio.sleep(2.0)
            finally:
                await consumer.stop()

    async def _catch_up(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> None:
        """Read what the topic holds now and apply only the newest announcement of each kind,
        so a starting worker loads one version per kind, not every old one in turn."""
        ends = await consumer.end_offsets(tps)
        newest: dict[bytes | None, bytes | None] = {}
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for messages in (await consumer.getmany(timeout_ms=1000)).values():
                for message in messages:
                    newest[message.key] = message.value
        for value in newest.values():
            await self.apply(value)


def _load(models_dir: Path, kind: str, version: str) -> Any:
    from models.registry import Registry
    from models.runtime import load_classifier, load_forecaster

    registry = Registry(models_dir)
    if kind == "classifier":
        return load_classifier(registry.get("classifier", version))
    return load_forecaster(registry.get("forecaster", version))
