"""Class mix, capacities and utilisation: what the links filters and answers are made of."""

import pytest

from api.capacities import CapacitiesError, load_capacities, utilisation
from api.classmix import class_mix_of, dominant_class
from streams.schemas import TrafficClass, WindowRecord
from tests.unit.api.handfed import window


def test_a_window_without_a_class_mix_has_none():
    assert class_mix_of(WindowRecord.model_validate_json(window("a", 1.0))) is None
    assert class_mix_of(None) is None
    assert dominant_class(None) is None


@pytest.mark.parametrize(
    ("mix", "shares"),
    [
        ({"web": (300, 1), "bulk": (100, 9)}, {"bulk": 0.25, "web": 0.75}),
        ({"web": (0, 1), "dns": (0, 3)}, {"dns": 0.75, "web": 0.25}),  # no bytes: by flows
        ({"web": (5, 1), "dns": (0, 2)}, {"web": 1.0}),
        ({"web": (0, 0)}, None),
    ],
)
def test_the_class_mix_of_a_window_is_its_byte_shares(mix, shares):
    got = class_mix_of(WindowRecord.model_validate_json(window("a", 1.0, class_mix=mix)))
    assert got == (None if shares is None else pytest.approx(shares))


def test_the_dominant_class_is_the_largest_share_and_ties_go_by_name():
    assert dominant_class({"web": 0.2, "bulk": 0.8}) == TrafficClass.BULK
    assert dominant_class({"web": 0.5, "bulk": 0.5}) == TrafficClass.BULK


def test_capacities_load_and_give_utilisation(tmp_path):
    path = tmp_path / "capacities.json"
    path.write_text('{"edge-1": 1e9, "core/ge-0/0/1": 10000000000}')
    capacities = load_capacities(path)
    assert capacities == {"edge-1": 1e9, "core/ge-0/0/1": 1e10}
    assert utilisation(5e8, capacities["edge-1"]) == 0.5
    assert utilisation(5e8, None) is None
    assert load_capacities(None) == {}


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("{nope", "not JSON"),
        ("[1, 2]", "one object"),
        ('{"a": 0}', "positive number"),
        ('{"a": -5}', "positive number"),
        ('{"a": "fast"}', "positive number"),
        ('{"a": true}', "positive number"),
        ('{"a": 1e999}', "positive number"),
    ],
)
def test_a_bad_capacities_file_is_refused_with_the_reason(tmp_path, content, says):
    path = tmp_path / "capacities.json"
    path.write_text(content)
    with pytest.raises(CapacitiesError, match=says):
        load_capacities(path)
    with pytest.raises(CapacitiesError, match="cannot read"):
        load_capacities(tmp_path / "missing.json")
