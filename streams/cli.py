"""`linkcast worker`, `linkcast topics`, `linkcast schema`."""

import argparse
import asyncio
from pathlib import Path

from streams.settings import KafkaSettings, StreamSettings


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
    from faust import Worker

    from streams.admin import ensure_topics
    from streams.app import create_app
    from streams.brokerwatch import BrokerWatch, quiet_repeated_logs
    from streams.topics import topic_specs

    settings = StreamSettings()
    app = create_app(settings)  # loads the models: a broken one stops it before Kafka is touched
    asyncio.run(
        ensure_topics(settings.kafka_bootstrap, topic_specs(settings), settings.broker_timeout_s)
    )
    # If the cluster goes away, Faust's clients reconnect by themselves; the watch
    # says so in one clear log line and the linkcast_kafka_* metrics.
    app.task(BrokerWatch(settings.kafka_bootstrap).run)
    quiet_repeated_logs()
    worker = Worker(app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()  # returns only when the worker stops
    return 0


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
