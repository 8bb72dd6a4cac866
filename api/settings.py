"""API settings; each field reads LINKCAST_<FIELD>."""

from pydantic import Field

from streams.settings import KafkaSettings


class ApiSettings(KafkaSettings):
    """Settings of one API replica."""

    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=0, le=65535)
    api_page_max: int = Field(1000, ge=1, le=100_000, description="most links in one answer")
    broker_check_s: float = Field(5.0, gt=0, description="how often the view checks the broker")
