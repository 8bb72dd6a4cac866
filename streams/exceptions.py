"""Errors of the streams package; every message says what to do next."""


class LinkcastError(Exception):
    """Root of every error linkcast raises on purpose."""


class BrokerUnavailableError(LinkcastError):
    """The Kafka cluster did not answer within the allowed time."""

    def __init__(self, bootstrap: str, timeout_s: float, cause: str = "") -> None:
        detail = f" ({cause})" if cause else ""
        super().__init__(
            f"Kafka at {bootstrap} did not answer in {timeout_s:g} s{detail}; start it with "
            "'linkcast kafka start' or set LINKCAST_KAFKA_BOOTSTRAP to a running cluster"
        )
        self.bootstrap = bootstrap


class TopicMismatchError(LinkcastError):
    """A topic exists with a layout other than the one the settings ask for."""
