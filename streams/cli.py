"""`linkcast worker`, `linkcast topics`, `linkcast schema`."""

import argparse
import asyncio
import gc
from pathlib import Path

from streams.settings import KafkaSettings, StreamSettings

#: The youngest generation's collection threshold for the worker (CPython 3.11's default:
#: 700). A drain makes tens of thousands of short-lived containers (window records,
#: forecast rows, messages): at 700 the collector ran 1,976 / 180 / 16 times (generations
#: 0 / 1 / 2) in ``linkcast bench processor --records 100000 --links 1000 --link-rate 1``
#: and took 2.2-2.7 s of it, about 18 % (timed with ``gc.callbacks``); at 10,000 it ran
#: 68 / 6 / 0 times and took 0.7 s.
#: The bench's records/s moved within its run-to-run spread, so no speed-up is claimed.
GC_YOUNG_THRESHOLD = 10_000


def register(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    worker = commands.add_parser(
        "worker",
        help="run a stream worker (settings from LINKCAST_* variables)",
        description="Run one Faust worker of the group. Start more to share the partitions.",
    )
    worker.set_defaults(func=run_worker)

    topics = commands.add_parser("topics", help="create linkcast's topics")
    topics.add_argument("action", choices=["create"], help="create the topics that are missing")
    topics.set_defaults(func=run_topics)

    schema = commands.add_parser("schema", help="write the JSON Schema of every topic's records")
    schema.add_argument(
        "--out", type=Path, required=True, help="folder to write *.schema.json into"
    )
    schema.set_defaults(func=run_schema)


def run_worker(args: argparse.Namespace) -> int:
    from streams import allocator

    allocator.limit_arenas()  # first: before the imports and threads of Faust, RocksDB, models
    from faust import Worker

    from streams.admin import ensure_topics
    from streams.app import create_app
    from streams.brokerwatch import BrokerWatch, quiet_repeated_logs
    from streams.topics import topic_specs

    settings = StreamSettings()
    allocator.register_gauges()
    app = create_app(settings)  # loads the models: a broken one stops it before Kafka is touched
    asyncio.run(
        ensure_topics(settings.kafka_bootstrap, topic_specs(settings), settings.broker_timeout_s)
    )
    # If the cluster goes away, Faust's clients reconnect by themselves; the watch
    # says so in one clear log line and the linkcast_kafka_* metrics.
    app.task(BrokerWatch(settings.kafka_bootstrap).run)
    quiet_repeated_logs()
    tune_gc()
    worker = Worker(app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()  # returns only when the worker stops
    return 0


def tune_gc() -> None:
    """Keep the cyclic garbage collector off the per-bin path of a worker.

    What exists now (modules, the models, the app) lives as long as the worker:
    frozen, a full collection no longer walks it. Objects made later are collected
    as before, less often. A frozen object that becomes garbage is freed by reference
    counting only: one in a reference cycle stays (a model replaced by a rollout, if
    its objects form one: at most one start-up model of each kind).
    """
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, oldest)


def run_topics(args: argparse.Namespace) -> int:
    from streams.admin import ensure_topics
    from streams.topics import topic_specs

    settings = KafkaSettings()
    specs = topic_specs(settings)
    created = asyncio.run(ensure_topics(settings.kafka_bootstrap, specs, settings.broker_timeout_s))
    for spec in specs:
        state = "created" if spec.name in created else "exists"
        print(f"{spec.name:40} partitions={spec.partitions} replication={spec.replication} {state}")
    return 0


def run_schema(args: argparse.Namespace) -> int:
    from streams.jsonschema import write_schemas

    for path in write_schemas(args.out):
        print(path)
    return 0
