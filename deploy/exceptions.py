"""Errors of the deploy package (launcher, demo)."""

from streams.exceptions import LinkcastError


class LauncherError(LinkcastError):
    """The local Kafka cluster could not be started, stopped or found."""
