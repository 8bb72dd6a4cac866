"""Link mapping files: each rule kind, rule order, the default, and clear errors for bad files."""

import json

import pytest

from producers.capture import TCP, UDP, Packet
from producers.exceptions import CaptureError
from producers.linkmap import load_link_map, single_link


def pkt(
    src="192.0.2.1",
    dst="198.51.100.1",
    sport=40000,
    dport=443,
    vlan=None,
    interface=0,
    interface_name=None,
    proto=TCP,
):
    return Packet(0.0, interface, src, dst, proto, sport, dport, 60, 0, vlan, interface_name)


def link_map(tmp_path, rules, default="uplink"):
    path = tmp_path / "links.json"
    path.write_text(json.dumps({"default": default, "rules": rules}))
    return load_link_map(path)


def test_interface_index_matches_the_packets_interface(tmp_path):
    link_of = link_map(tmp_path, [{"interface": 2, "link": "dmz"}])
    assert link_of(pkt(interface=2)) == "dmz"
    assert link_of(pkt(interface=1)) == "uplink"


def test_interface_name_matches_the_pcapng_if_name_exactly(tmp_path):
    link_of = link_map(tmp_path, [{"interface": "eth1", "link": "wan"}])
    assert link_of(pkt(interface=3, interface_name="eth1")) == "wan"
    assert link_of(pkt(interface=3, interface_name="eth10")) == "uplink"
    assert link_of(pkt(interface=3, interface_name=None)) == "uplink"  # classic pcap: no names


def test_an_interface_name_that_looks_like_a_number_is_still_a_name(tmp_path):
    link_of = link_map(tmp_path, [{"interface": "0", "link": "named-zero"}])
    assert link_of(pkt(interface=0, interface_name=None)) == "uplink"
    assert link_of(pkt(interface=5, interface_name="0")) == "named-zero"


def test_vlan_matches_the_outermost_tag(tmp_path):
    link_of = link_map(tmp_path, [{"vlan": 10, "link": "office"}])
    assert link_of(pkt(vlan=10)) == "office"
    assert link_of(pkt(vlan=11)) == "uplink"
    assert link_of(pkt(vlan=None)) == "uplink"


def test_subnet_matches_source_or_destination_of_its_own_ip_version(tmp_path):
    link_of = link_map(
        tmp_path,
        [{"subnet": "10.1.0.0/16", "link": "branch"}, {"subnet": "2001:db8::/32", "link": "v6"}],
    )
    assert link_of(pkt(src="10.1.2.3")) == "branch"
    assert link_of(pkt(dst="10.1.255.255")) == "branch"
    assert link_of(pkt(src="10.2.0.1", dst="10.0.255.255")) == "uplink"
    assert link_of(pkt(src="2001:db8::1", dst="2001:db9::1")) == "v6"
    assert link_of(pkt(src="::ffff:10.1.2.3", dst="2001:db9::1")) == "uplink"  # IPv6, not 10/8


def test_port_matches_either_port(tmp_path):
    link_of = link_map(tmp_path, [{"port": 5060, "link": "voice"}])
    assert link_of(pkt(sport=5060, dport=40000, proto=UDP)) == "voice"
    assert link_of(pkt(sport=40000, dport=5060, proto=UDP)) == "voice"
    assert link_of(pkt(sport=5061, dport=5059)) == "uplink"


def test_the_first_matching_rule_wins(tmp_path):
    voice_first = [{"port": 5060, "link": "voice"}, {"vlan": 10, "link": "office"}]
    packet = pkt(vlan=10, dport=5060)
    assert link_map(tmp_path, voice_first)(packet) == "voice"
    assert link_map(tmp_path, voice_first[::-1])(packet) == "office"


def test_no_rules_means_everything_goes_to_the_default(tmp_path):
    link_of = link_map(tmp_path, [], default="only")
    assert {link_of(pkt(vlan=v, interface=i)) for v in (None, 1) for i in (0, 1)} == {"only"}
    assert single_link("lab")(pkt()) == "lab"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{not json", "cannot read the link mapping"),
        ('{"default": "a", "rules": [{"vlna": 10, "link": "x"}]}', "rules.0.vlna: Extra inputs"),
        ('{"default": "a", "colour": "red"}', "colour: Extra inputs"),
        ('{"rules": []}', "default: Field required"),
        (
            '{"default": "a", "rules": [{"vlan": 10, "port": 5060, "link": "x"}]}',
            "rules.0: Value error, a rule needs exactly one of interface, vlan, subnet, port; "
            "got ['vlan', 'port']",
        ),
        ('{"default": "a", "rules": [{"link": "x"}]}', "exactly one of"),
        (
            '{"default": "a", "rules": [{"subnet": "10.1.0.1/16", "link": "x"}]}',
            "rules.0.subnet: Value error, 10.1.0.1/16 has host bits set",
        ),
        (
            '{"default": "a", "rules": [{"subnet": "10.1.0.0/33", "link": "x"}]}',
            "rules.0.subnet: Value error, '10.1.0.0/33' does not appear to be",
        ),
        ('{"default": "a", "rules": [{"subnet": 7, "link": "x"}]}', "7 is not a network"),
        ('{"default": "a", "rules": [{"interface": -1, "link": "x"}]}', "rules.0.interface"),
        ('{"default": "a", "rules": [{"interface": true, "link": "x"}]}', "True is neither"),
        ('{"default": "a", "rules": [{"vlan": 4096, "link": "x"}]}', "rules.0.vlan"),
    ],
)
def test_a_bad_mapping_file_is_refused_naming_the_problem(tmp_path, text, says):
    path = tmp_path / "links.json"
    path.write_text(text)
    with pytest.raises(CaptureError) as error:
        load_link_map(path)
    assert str(path) in str(error.value)
    assert says in str(error.value)


def test_a_missing_mapping_file_is_refused(tmp_path):
    with pytest.raises(CaptureError, match="cannot read the link mapping"):
        load_link_map(tmp_path / "absent.json")
