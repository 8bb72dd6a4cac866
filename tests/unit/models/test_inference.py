"""The fast engines give the library's numbers: the tree exactly, the LSTM within tolerance."""

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


def test_tree_arrays_give_sklearns_probabilities_exactly():
    model, x = _tree()
    runner = TreeClassifier.from_sklearn(model)
    expected = np.zeros((len(x), len(CLASSES)))
    for column, name in enumerate(model.classes_):
        expected[:, CLASSES.index(name)] = model.predict_proba(x)[:, column]
    assert np.array_equal(runner.proba(x), expected)
    for row in range(0, 2000, 97):
        assert np.array_equal(runner.proba_one(x[row].tolist()), expected[row])


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
