"""The API's traffic metrics: the view's links summed, never a series per link."""

from prometheus_client.parser import text_string_to_metric_families

from api.metrics import ApiMetrics
from tests.unit.api.handfed import HandFedView, alert, forecast, window


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the one sample ``name`` with ``labels`` among its labels, else None."""
    found = [
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and labels.items() <= s.labels.items()
    ]
    assert len(found) <= 1, f"{len(found)} samples of {name} {labels}"
    return found[0] if found else None


def test_bandwidth_forecasts_class_bytes_and_alerts_are_summed_over_the_links():
    view = HandFedView()
    view.apply("windows", b"a", window("a", 5.0, bps=800.0, class_mix={"web": (60, 2)}))
    view.apply(
        "windows", b"b", window("b", 5.0, bps=1600.0, class_mix={"web": (100, 1), "dns": (5, 3)})
    )
    view.apply("forecasts", b"a", forecast("a", 5.0, bps=1000.0))
    view.apply("forecasts", b"b", forecast("b", 5.0, bps=3000.0))
    view.apply("alerts", b"a", alert("a", "a:attack_share:1", severity="critical"))
    view.apply("alerts", b"b", alert("b", "b:attack_share:1", severity="critical"))
    view.apply("alerts", b"b", alert("b", "b:attack_share:2", raised=False))

    text = ApiMetrics(view).render().decode()

    assert sample(text, "linkcast_api_view_bandwidth_bps") == 2400.0
    assert sample(text, "linkcast_api_view_forecast_bps", horizon_s="10", bound="median") == 4000
    assert sample(text, "linkcast_api_view_forecast_bps", horizon_s="1", bound="lower") == 2000
    assert sample(text, "linkcast_api_view_forecast_bps", horizon_s="1", bound="upper") == 8000
    assert sample(text, "linkcast_api_view_class_bytes", cls="web") == 160
    assert sample(text, "linkcast_api_view_class_bytes", cls="dns") == 5
    assert sample(text, "linkcast_api_view_class_bytes", cls="bulk") is None
    reason = "attack share above 50%"
    assert sample(text, "linkcast_api_view_alerts_active", reason=reason) == 2
    assert 'link="' not in text  # no series names a link


def test_an_empty_view_exports_zero_bandwidth_and_no_forecast_series():
    text = ApiMetrics(HandFedView()).render().decode()
    assert sample(text, "linkcast_api_view_bandwidth_bps") == 0
    assert "linkcast_api_view_forecast_bps{" not in text
    assert "# TYPE linkcast_api_view_forecast_bps gauge" in text
