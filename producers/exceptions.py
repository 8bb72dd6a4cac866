"""Errors of the producers package."""

from streams.exceptions import LinkcastError


class PublishError(LinkcastError):
    """Records could not be delivered to Kafka."""
