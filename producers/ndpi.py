"""Labels from nDPI: its categories mapped onto linkcast's traffic classes.

An nDPI ``.out`` file (ndpiReader's report, as beside each capture of the nDPI
test suite) lists one line per flow with its protocol and category. Our flow
records get the class of the nDPI flow with the same protocol and endpoints.
"""

import re
from pathlib import Path

from streams.schemas import TrafficClass

#: nDPI category -> linkcast class. Categories not listed map to OTHER.
CATEGORY_CLASS: dict[str, TrafficClass] = {
    "Web": TrafficClass.WEB,
    "SocialNetwork": TrafficClass.WEB,
    "Shopping": TrafficClass.WEB,
    "Advertisement": TrafficClass.WEB,
    "Cloud": TrafficClass.WEB,
    "Collaborative": TrafficClass.WEB,
    "ConnCheck": TrafficClass.WEB,
    "Email": TrafficClass.WEB,
    "VirtAssistant": TrafficClass.WEB,
    "Gambling": TrafficClass.WEB,
    "AdultContent": TrafficClass.WEB,
    "Streaming": TrafficClass.STREAMING,
    "Video": TrafficClass.STREAMING,
    "Music": TrafficClass.STREAMING,
    "Media": TrafficClass.STREAMING,
    "Download": TrafficClass.BULK,  # Download-FileTransfer-FileSharing
    "DataTransfer": TrafficClass.BULK,
    "SoftwareUpdate": TrafficClass.BULK,
    "VoIP": TrafficClass.INTERACTIVE,
    "Chat": TrafficClass.INTERACTIVE,
    "Game": TrafficClass.INTERACTIVE,
    "RemoteAccess": TrafficClass.INTERACTIVE,
}
#: Protocols that are DNS whatever their category (nDPI files DNS under Network).
DNS_PROTOCOLS = {"DNS", "MDNS", "LLMNR", "DNScrypt", "DoH_DoT", "AVASTSecureDNS"}
IP_PROTOCOLS = {"TCP": 6, "UDP": 17, "ICMP": 1, "ICMPV6": 58, "IGMP": 2, "VRRP": 112, "SCTP": 132,
                "ESP": 50, "PGM": 113}  # fmt: skip

_LINE = re.compile(
    r"^\s*\d+\s+(?P<l4>\S+)\s+(?P<a>\S+)\s+(?:<->|->)\s+(?P<b>\S+)\s+"
    r"\[proto: (?:[\d.]+/)?(?P<proto>[^\]]+)\].*?\[cat: (?P<cat>[^/\]]+)"
)

Endpoint = tuple[str, int]
ConversationKey = tuple[int, Endpoint, Endpoint]


def traffic_class(protocol: str, category: str) -> TrafficClass:
    """The class of a flow nDPI calls ``protocol`` (e.g. 'DNS.Apple') in ``category``."""
    if DNS_PROTOCOLS & set(protocol.split(".")):
        return TrafficClass.DNS
    return CATEGORY_CLASS.get(category, TrafficClass.OTHER)


def conversation(proto: int, a: Endpoint, b: Endpoint) -> ConversationKey:
    """The same key for both directions."""
    return (proto, a, b) if a <= b else (proto, b, a)


def read_labels(path: Path) -> dict[ConversationKey, TrafficClass]:
    """The class of every flow an nDPI ``.out`` file reports."""
    labels: dict[ConversationKey, TrafficClass] = {}
    for line in path.read_text(errors="replace").splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        l4 = match["l4"]
        proto = IP_PROTOCOLS.get(l4.upper()) or (int(l4) if l4.isdigit() else None)
        if proto is None:
            continue
        key = conversation(proto, _endpoint(match["a"]), _endpoint(match["b"]))
        labels[key] = traffic_class(match["proto"], match["cat"])
    return labels


def _endpoint(text: str) -> Endpoint:
    """'1.2.3.4:80', '[fe80::1]:546', '1.2.3.4' or '[fe80::1]' -> (address, port)."""
    if text.startswith("["):
        address, _, rest = text[1:].partition("]")
        return address, int(rest[1:]) if rest.startswith(":") else 0
    if text.count(":") == 1:
        address, port = text.split(":")
        return address, int(port)
    return text, 0
