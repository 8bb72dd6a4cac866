"""The worker shows which model versions it uses and the forecaster's evaluation figure."""

from prometheus_client import REGISTRY

from streams import metrics


def _info(kind: str, version: str) -> float | None:
    return REGISTRY.get_sample_value("linkcast_model_info", {"kind": kind, "version": version})


def test_a_swap_replaces_the_version_shown_and_sets_the_evaluation_wape():
    metrics.set_model("forecaster", "v-old", None, {"wape": 40.0})
    metrics.set_model("forecaster", "v-new", "v-old", {"wape": 36.6})
    assert _info("forecaster", "v-new") == 1
    assert _info("forecaster", "v-old") is None
    assert REGISTRY.get_sample_value("linkcast_forecaster_evaluation_wape_ratio") == 0.366


def test_a_classifier_leaves_the_forecaster_figure_alone():
    metrics.set_model("forecaster", "f1", None, {"wape": 50.0})
    metrics.set_model("classifier", "c1", None, {"wape": 10.0})
    assert _info("classifier", "c1") == 1
    assert REGISTRY.get_sample_value("linkcast_forecaster_evaluation_wape_ratio") == 0.5
