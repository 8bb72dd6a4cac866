"""Topic creation against the real broker."""

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streams.admin import ensure_topics, partitions_of
from streams.exceptions import TopicMismatchError
from streams.settings import KafkaSettings
from streams.topics import Topics, topic_specs

pytestmark = pytest.mark.kafka


async def cleanup_policy(bootstrap: str, topic: str) -> str:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)]
        )
        entries = response.resources[0][4]
        return next(value for name, value, *_ in entries if name == "cleanup.policy")
    finally:
        await admin.close()


def test_topics_are_created_once_with_their_layout(kafka_bootstrap, topic_prefix):
    settings = KafkaSettings(
        kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix, partitions=3
    )
    specs = topic_specs(settings)
    created = asyncio.run(ensure_topics(kafka_bootstrap, specs))
    assert sorted(created) == sorted(s.name for s in specs)
    assert asyncio.run(ensure_topics(kafka_bootstrap, specs)) == []  # idempotent
    topics = Topics(topic_prefix)
    assert asyncio.run(partitions_of(kafka_bootstrap, topics.flows)) == 3
    assert asyncio.run(partitions_of(kafka_bootstrap, topics.models)) == 1
    assert asyncio.run(cleanup_policy(kafka_bootstrap, topics.link_state)) == "compact"
    assert asyncio.run(cleanup_policy(kafka_bootstrap, topics.flows)) == "delete"


def test_a_topic_with_another_partition_count_is_refused(kafka_bootstrap, topic_prefix):
    asyncio.run(
        ensure_topics(
            kafka_bootstrap, topic_specs(KafkaSettings(topic_prefix=topic_prefix, partitions=2))
        )
    )
    with pytest.raises(TopicMismatchError, match="LINKCAST_PARTITIONS=2"):
        asyncio.run(
            ensure_topics(
                kafka_bootstrap, topic_specs(KafkaSettings(topic_prefix=topic_prefix, partitions=4))
            )
        )
