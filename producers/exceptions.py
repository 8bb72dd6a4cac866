"""Errors of the producers package."""

from streams.exceptions import LinkcastError


class PublishError(LinkcastError):
    """Records could not be delivered to Kafka."""


class CaptureError(LinkcastError):
    """A capture file cannot be read at all (not a capture, unsupported link type)."""


class DatasetError(LinkcastError):
    """A flow dataset (CSV) cannot be read: unknown columns, not a CSV."""


class BenchError(LinkcastError):
    """A benchmark cannot run: an input it cannot measure, or no baseline to measure against."""
