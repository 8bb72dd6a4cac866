"""Which link a packet belongs to: one link per capture, or rules from a mapping file.

A mapping file is JSON::

    {"default": "uplink",
     "rules": [{"vlan": 10, "link": "office"},
               {"subnet": "10.1.0.0/16", "link": "branch-1"},
               {"port": 5060, "link": "voice"}]}

Rules are tried in order; the first that matches names the link. ``subnet``
matches the source or the destination address, ``port`` either port, ``vlan``
the outermost 802.1Q tag.
"""

import ipaddress
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from producers.capture import Packet
from producers.exceptions import CaptureError
from streams.schemas import LinkId


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    link: LinkId
    vlan: int | None = Field(None, ge=0, le=4095)
    subnet: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    port: int | None = Field(None, ge=0, le=65535)

    @model_validator(mode="after")
    def _one_criterion(self) -> "Rule":
        given = [n for n in ("vlan", "subnet", "port") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(
                f"a rule needs exactly one of vlan, subnet, port; got {given or 'none'}"
            )
        return self


class LinkMap(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    default: LinkId
    rules: list[Rule] = []


@dataclass(frozen=True)
class _Matcher:
    rules: tuple[Rule, ...]
    default: str

    def __call__(self, p: Packet) -> str:
        for rule in self.rules:
            if rule.vlan is not None and p.vlan == rule.vlan:
                return rule.link
            if rule.port is not None and rule.port in (p.sport, p.dport):
                return rule.link
            if rule.subnet is not None and (_in(p.src, rule.subnet) or _in(p.dst, rule.subnet)):
                return rule.link
        return self.default


@lru_cache(maxsize=65536)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def _in(text: str, net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    address = _address(text)
    return address.version == net.version and address in net


def load_link_map(path: Path) -> Callable[[Packet], str]:
    """Read a mapping file; a bad one raises CaptureError naming the problem."""
    try:
        data = json.loads(path.read_text())
        mapping = LinkMap.model_validate(data)
    except (OSError, json.JSONDecodeError) as exc:
        raise CaptureError(f"cannot read the link mapping {path}: {exc}") from exc
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise CaptureError(f"link mapping {path}: {where}: {err['msg']}") from exc
    return _Matcher(tuple(mapping.rules), mapping.default)


def single_link(name: str) -> Callable[[Packet], str]:
    return lambda _packet: name
