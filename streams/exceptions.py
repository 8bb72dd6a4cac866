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


class HorizonsUnavailableError(LinkcastError):
    """The forecaster does not make a horizon that the settings ask for."""

    def __init__(self, version: str, offered_s: list[float], missing_s: list[float]) -> None:
        offered = ", ".join(f"{h:g}" for h in offered_s)
        missing = ", ".join(f"{h:g}" for h in missing_s)
        super().__init__(
            f"forecaster {version} forecasts {offered} s ahead, not {missing} s: set "
            f"LINKCAST_FORECAST_HORIZONS_S to some of [{offered}] (or unset it for all)"
        )
