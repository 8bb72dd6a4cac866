"""The fast engines give the library's numbers: the tree exactly, the LSTM within tolerance."""

import os

import numpy as np
from sklearn.tree import DecisionTreeClassifier

from models.classes import CLASSES
from models.features import FLOW_FEATURES
from models.inference import FORECAST_TOLERANCE, NumpyForecaster, TreeClassifier


def _tree() -> tuple[DecisionTreeClassifier, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, len(FLOW_FEATURES))).astype(np.float32)
    y = np.array(CLASSES)[(x[:, 0] > 0) * 2 + (x[:, 3] > 0.5) + (x[:, 5] < -1) * 3]
    return DecisionTreeClassifier(max_depth=8, random_state=0).fit(x, y), x


def test_tree_arrays_give_sklearns_classes_and_probabilities():
    model, x = _tree()
    runner = TreeClassifier.from_sklearn(model)
    expected = np.zeros((len(x), len(CLASSES)))
    for column, name in enumerate(model.classes_):
        expected[:, CLASSES.index(name)] = model.predict_proba(x)[:, column]
    ours = runner.proba(x)
    assert np.array_equal(ours.argmax(axis=1), expected.argmax(axis=1))
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12)  # normalisation rounding only
    for row in range(0, 2000, 97):
        assert np.array_equal(runner.proba_one(x[row].tolist()), ours[row])


def test_a_batch_of_flows_gets_the_classes_each_would_get_alone():
    """The batch path picks every row's class at once; ties go to the first class by name,
    as scikit-learn's do and as the one-flow path does."""

    def leaf(**shares: float) -> np.ndarray:
        row = np.zeros(len(CLASSES))
        for name, share in shares.items():
            row[CLASSES.index(name)] = share
        return row

    # node 0: log_bytes <= 5 -> leaf 1, else node 2: log_bytes <= 9 -> leaf 3, else leaf 4
    runner = TreeClassifier(
        left=np.array([1, -1, 3, -1, -1]),
        right=np.array([2, -1, 4, -1, -1]),
        feature=np.zeros(5, dtype=np.int64),
        threshold=np.array([5.0, 0.0, 9.0, 0.0, 0.0]),
        proba=np.vstack(
            [
                leaf(bulk=1.0),  # inner nodes: never an answer
                leaf(web=0.5, dns=0.5),
                leaf(bulk=1.0),
                leaf(streaming=0.4, attack=0.4, bulk=0.2),
                leaf(web=0.3, other=0.3, interactive=0.2, bulk=0.2),
            ]
        ),
    )
    flows = [
        {"ts": 1.0, "bytes": nbytes, "packets": 1}
        for nbytes in (10, 1000, 100_000, 50, 20_000)  # log1p: 2.4, 6.9, 11.5, 3.9, 9.9
    ]
    together = runner.classify(flows)
    assert together == [runner.classify([f])[0] for f in flows]
    assert together == [("dns", 0.5), ("attack", 0.4), ("other", 0.3), ("dns", 0.5), ("other", 0.3)]


def test_numpy_lstm_matches_keras_within_tolerance():
    from models.forecaster import ForecasterParams, build, export_weights

    model = build(ForecasterParams(window_bins=20, horizons=(1, 5)))
    x = np.random.default_rng(1).normal(size=(64, 20, model.input_shape[-1])).astype(np.float32)
    keras_out = np.asarray(model(x, training=False))
    numpy_out = NumpyForecaster(export_weights(model))(x)
    assert keras_out.shape == numpy_out.shape == (64, 2, 3)
    assert np.max(np.abs(keras_out - numpy_out)) < FORECAST_TOLERANCE
    assert np.all(numpy_out[:, :, 0] <= numpy_out[:, :, 1])  # intervals never inverted
    assert np.all(numpy_out[:, :, 1] <= numpy_out[:, :, 2])


def test_tflite_models_of_a_version_match_keras_for_any_batch_size(tmp_path):
    from models.forecaster import TFLITE_BATCHES, ForecasterParams, build, export_tflite
    from models.inference import LiteForecaster, chunk_plans

    model = build(ForecasterParams(window_bins=12, horizons=(1, 3)))
    paths = {}
    for batch in TFLITE_BATCHES[:2]:
        paths[batch] = tmp_path / f"b{batch}.tflite"
        paths[batch].write_bytes(export_tflite(model, 12, batch))
    engine = LiteForecaster(paths)
    assert set(engine.call_s) == {1, 16}
    assert engine.plan(0) == []
    assert sum(engine.plan(37)) >= 37
    assert engine.plan(37)[:2] == [16, 16]  # whole chunks of the largest first
    # the plan follows this machine's timings; each kind of plan, whatever they are
    for call_s in (engine.call_s, {1: 1e-6, 16: 1.0}, {1: 1.0, 16: 1e-6}):
        engine._plans = chunk_plans(call_s)
        for n in (1, 5, 16, 37):  # one model exactly, padding, several chunks
            x = np.random.default_rng(n).normal(size=(n, 12, model.input_shape[-1]))
            out = engine(x.astype(np.float32))
            assert out.shape == (n, 2, 3)
            assert np.max(np.abs(out - np.asarray(model(x, training=False)))) < FORECAST_TOLERANCE


def test_a_call_runs_in_the_chunks_that_cost_least():
    from models.inference import chunk_plans

    # the packaged model's calls on one pinned core: 95 us, 297 us and 3.5 ms
    plans = chunk_plans({1: 95e-6, 16: 297e-6, 256: 3542e-6})
    assert len(plans) == 256
    assert plans[0] == []
    assert plans[1] == [1]
    assert plans[3] == [1, 1, 1]
    assert plans[4] == [16]
    assert sorted(plans[17]) == [1, 16]
    assert sorted(plans[40]) == [16, 16, 16]
    assert plans[200] == [256]  # 13 calls of 16 would take 3.9 ms
    for n, plan in enumerate(plans):  # every window has a place
        assert sum(plan) >= n
    # a machine where small calls cost nearly as much as large ones pads instead
    assert chunk_plans({1: 1.0, 16: 1.1, 256: 1.2})[17] == [256]


def test_ties_go_to_the_first_class_by_name_as_in_scikit_learn():
    from models.inference import best_class

    proba = np.zeros(len(CLASSES))
    proba[CLASSES.index("web")] = proba[CLASSES.index("bulk")] = 0.5
    assert best_class(proba) == "bulk"


def test_the_tflite_engine_is_safe_from_several_threads(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from models.forecaster import ForecasterParams, build, export_tflite
    from models.inference import LiteForecaster

    model = build(ForecasterParams(window_bins=12, horizons=(1, 3)))
    path = tmp_path / "b1.tflite"
    path.write_bytes(export_tflite(model, 12, 1))
    engine = LiteForecaster({1: path})
    inputs = [
        np.random.default_rng(k).normal(size=(1, 12, model.input_shape[-1])).astype(np.float32)
        for k in range(64)
    ]
    alone = [engine(x) for x in inputs]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(engine, inputs))
    assert all(np.array_equal(a, b) for a, b in zip(alone, together, strict=True))


def test_usable_cpus_follow_the_affinity_and_a_cgroup_quota(tmp_path):
    from models.inference import usable_cpus

    pinned = len(os.sched_getaffinity(0))
    cpu_max = tmp_path / "cpu.max"
    assert usable_cpus(cpu_max) == pinned  # no such file: the affinity
    cpu_max.write_text("max 100000\n")
    assert usable_cpus(cpu_max) == pinned
    cpu_max.write_text("50000 100000\n")  # half a CPU: one thread
    assert usable_cpus(cpu_max) == 1
    cpu_max.write_text(f"{pinned * 300000} 100000\n")  # a quota above the affinity
    assert usable_cpus(cpu_max) == pinned
