"""Which link a packet belongs to: one link per capture, or rules from a mapping file.

A mapping file is JSON::

    {"default": "uplink",
     "rules": [{"interface": "eth1", "link": "wan"},
               {"interface": 2, "link": "dmz"},
               {"vlan": 10, "link": "office"},
               {"subnet": "10.1.0.0/16", "link": "branch-1"},
               {"port": 5060, "link": "voice"}]}

Each rule has exactly one criterion. Rules are tried in order; the first that
matches names the link, and a packet no rule matches goes to ``default``.

* ``interface``: the capture interface that saw the packet. A JSON number is
  the interface index: in a pcapng file the position of its Interface
  Description Block in the section, from 0; a classic pcap has only index 0. A
  JSON string is the interface name, compared exactly with the pcapng
  ``if_name`` option ("eth1", "\\Device\\NPF_{...}"); a packet whose
  interface has no name (every classic pcap, some pcapng) never matches a name.
* ``vlan``: the outermost 802.1Q tag.
* ``subnet``: the source or the destination address.
* ``port``: the source or the destination port (a packet that is neither TCP
  nor UDP has ports 0).

Flow CSVs carry none of these: their records all go to the ``--link`` link.
"""

import ipaddress
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from producers.capture import Packet
from producers.exceptions import CaptureError
from streams.schemas import LinkId

CRITERIA = ("interface", "vlan", "subnet", "port")


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    link: LinkId
    interface: int | str | None = None
    vlan: int | None = Field(None, ge=0, le=4095)
    subnet: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    port: int | None = Field(None, ge=0, le=65535)

    @field_validator("interface", mode="before")
    @classmethod
    def _index_or_name(cls, value: object) -> object:
        # 2 is an index and "2" a name: neither is ever taken for the other
        is_index = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        if value is None or is_index or (isinstance(value, str) and value):
            return value
        raise ValueError(
            f"{value!r} is neither an interface index (a whole number from 0) nor a name"
        )

    @field_validator("subnet", mode="before")
    @classmethod
    def _network(cls, value: object) -> object:
        if value is None or isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
            return value
        if not isinstance(value, str):  # a bare number would pass as a /32
            raise ValueError(f"{value!r} is not a network; write one such as 10.1.0.0/16")
        try:
            return ipaddress.ip_network(value)
        except ValueError as exc:  # says why: "has host bits set", "does not appear to be"
            raise ValueError(f"{exc}; write a network such as 10.1.0.0/16") from None

    @model_validator(mode="after")
    def _one_criterion(self) -> "Rule":
        given = [n for n in CRITERIA if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(
                f"a rule needs exactly one of {', '.join(CRITERIA)}; got {given or 'none'}"
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
            if rule.interface is not None and rule.interface in (p.interface, p.interface_name):
                return rule.link
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
        # keep field names and list positions; drop pydantic's names of union members
        where = ".".join(str(p) for p in err["loc"] if isinstance(p, int) or p.isidentifier())
        raise CaptureError(f"link mapping {path}: {where}: {err['msg']}") from exc
    return _Matcher(tuple(mapping.rules), mapping.default)


def single_link(name: str) -> Callable[[Packet], str]:
    return lambda _packet: name
