"""POST /v1/predict/bandwidth and /v1/classify: the stream's models and feature code, on demand."""

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from models.registry import Registry
from models.runtime import load_classifier, load_forecaster
from tests.unit.api.handfed import HandFedView
from tests.unit.api.test_auth import token_for


@pytest.fixture
def client(make_settings, tmp_path):
    settings = make_settings(models_dir=tmp_path / "registry")  # empty: the packaged models
    with TestClient(create_app(settings, view=HandFedView())) as c:
        yield c


@pytest.fixture
def headers(client):
    return {"Authorization": f"Bearer {token_for(client, 'predictor')}"}


def _bins(n: int, start: float = 1_767_225_600.0) -> list[dict]:
    rng = np.random.default_rng(n)
    return [
        {"start_s": start + i, "bps": float(rng.uniform(1e6, 2e6)), "packets": 100, "flows": 4}
        for i in range(n)
    ]


def test_bandwidth_forecast_equals_the_models_own(client, headers, tmp_path):
    forecaster = load_forecaster(Registry(tmp_path / "registry").current("forecaster"))
    bins = _bins(forecaster.window_bins)
    answer = client.post(
        "/v1/predict/bandwidth", json={"bin_s": 1.0, "bins": bins}, headers=headers
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    expected = forecaster.forecast(
        np.array([[b["bps"] for b in bins]]),
        np.array([[b["start_s"] for b in bins]]),
        1.0,
        packets=np.full((1, len(bins)), 100.0),
        flows=np.full((1, len(bins)), 4.0),
    )[0]
    assert body["model_version"] == forecaster.version
    assert body["padded_bins"] == 0
    assert [h["horizon_s"] for h in body["horizons"]] == [float(h) for h in forecaster.horizons]
    got = [[h["lower_bps"], h["bps"], h["upper_bps"]] for h in body["horizons"]]
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    assert body["made_at_s"] == bins[-1]["start_s"] + 1.0


def test_a_short_series_is_padded_and_says_so(client, headers):
    answer = client.post("/v1/predict/bandwidth", json={"bins": _bins(5)}, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["padded_bins"] > 0


def test_the_older_qos_body_gets_the_older_answer(client, headers):
    body = {
        "packet_rate": [120.0] * 30,
        "bandwidth_util": [40.0 + i % 3 for i in range(30)],
        "rtt_variance": [0.4] * 30,
    }
    answer = client.post("/v1/predict/bandwidth", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assert set(answer.json()) == {"predicted_bandwidth", "unit"}
    assert answer.json()["unit"] == "Mbps"
    assert 10 < answer.json()["predicted_bandwidth"] < 200  # Mbit/s near the 40-42 given


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"bins": []}, "at least 1"),
        ({"bins": [{"start_s": 1.0, "bps": -1}]}, "greater than or equal to 0"),
        ({"bins": [{"start_s": 2.0, "bps": 1}, {"start_s": 1.0, "bps": 1}]}, "consecutive"),
        ({"bins": [{"start_s": 1.0, "bps": 1}, {"start_s": 51.0, "bps": 1}]}, "consecutive"),
        (
            {"bins": [{"start_s": 1.0, "bps": 1, "packets": 3}, {"start_s": 2.0, "bps": 1}]},
            "packets and flows",
        ),
        ({"packet_rate": [1], "bandwidth_util": [1, 2], "rtt_variance": [1]}, "lengths differ"),
        ({"bins": [{"start_s": 1.0, "bps": 1}], "extra": 1}, "xtra"),
    ],
)
def test_bad_bodies_get_422_with_the_reason(client, headers, body, reason):
    answer = client.post("/v1/predict/bandwidth", json=body, headers=headers)
    assert answer.status_code == 422
    assert reason in answer.text


FLOW = {
    "link": "a",
    "ts": 10.0,
    "start": 9.0,
    "bytes": 1200,
    "packets": 4,
    "proto": 17,
    "sport": 5353,
    "dport": 53,
}


def test_classify_one_and_many_as_the_stream_would(client, headers, tmp_path):
    classifier = load_classifier(Registry(tmp_path / "registry").current("classifier"))
    many = [FLOW, {**FLOW, "proto": 6, "dport": 443, "bytes": 900_000, "packets": 700}]
    answer = client.post("/v1/classify", json={"flows": many}, headers=headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model_version"] == classifier.version
    assert [(c["cls"], c["confidence"]) for c in body["classifications"]] == classifier.classify(
        many
    )
    one = client.post("/v1/classify", json=FLOW, headers=headers)
    assert one.json()["classifications"] == body["classifications"][:1]
    assert sum(body["classifications"][0]["probabilities"].values()) == pytest.approx(1.0)


def test_predictions_need_the_predict_scope(client):
    read_only = {"Authorization": f"Bearer {token_for(client, 'reader')}"}
    assert client.post("/v1/classify", json=FLOW, headers=read_only).status_code == 403
    assert client.post("/v1/classify", json=FLOW).status_code == 401
    bad = client.post(
        "/v1/classify",
        json={"flows": [{**FLOW, "bytes": "many"}]},
        headers={"Authorization": f"Bearer {token_for(client, 'predictor')}"},
    )
    assert bad.status_code == 422


def test_an_announced_version_this_replica_lacks_falls_back_to_the_current_one(tmp_path):
    from api.predictions import Models
    from streams.schemas import ModelAnnouncement

    announced = {
        "classifier": ModelAnnouncement(
            kind="classifier", version="20991231T000000Z-00000000", path="-", metrics={}
        )
    }
    registry = Registry(tmp_path / "registry")
    models = Models(registry, announced)
    assert models.classifier().version == registry.current("classifier").name
    assert models.classifier().version == registry.current("classifier").name  # no retry storm
