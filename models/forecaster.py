"""The bandwidth forecaster: a Keras LSTM over a link's last T bins, several horizons at once.

Input: ``series_inputs`` of T bins (shape (n, T, channels)). Output, shape
(n, H, 3): for each horizon the 10 %, 50 % and 90 % quantiles of
``log1p(bps)`` minus the window's level; ``features.to_bps`` turns them into
bits per second. The lower and upper quantiles are the median minus and plus a
softplus, so an interval is never inverted. Trained with the pinball loss.

Only training and the keras/tf engines import TensorFlow; the stream and the
API run the exported weights in numpy (``models.inference``).
"""

import os
from dataclasses import asdict, dataclass
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from models.features import SERIES_CHANNELS
from models.series import Windows

QUANTILES = (0.1, 0.5, 0.9)
#: Batch sizes of the TFLite models a version ships: a call runs in chunks of the
#: largest, the rest in the sizes that take least time (``inference.chunk_plans``).
TFLITE_BATCHES = (1, 16, 256)


@dataclass(frozen=True)
class ForecasterParams:
    """The architecture and the training run."""

    window_bins: int = 60
    horizons: tuple[int, ...] = (1, 10, 60)  # in bins
    units: int = 32
    dense_units: int = 32
    epochs: int = 12
    batch_size: int = 256
    learning_rate: float = 2e-3
    patience: int = 3
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "horizons": list(self.horizons), "quantiles": list(QUANTILES)}


@keras.saving.register_keras_serializable(package="linkcast")
class QuantileHead(keras.layers.Layer):
    """(n, 3H) -> (n, H, 3) as [median - softplus(a), median, median + softplus(b)]."""

    def __init__(self, horizons: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.horizons = horizons

    def call(self, inputs: Any) -> Any:
        h = self.horizons
        median = inputs[:, :h]
        below = keras.ops.softplus(inputs[:, h : 2 * h])
        above = keras.ops.softplus(inputs[:, 2 * h :])
        return keras.ops.stack([median - below, median, median + above], axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "horizons": self.horizons}


def pinball_loss(y_true: Any, y_pred: Any) -> Any:
    """Mean quantile loss over the quantiles and horizons; y_true (n, H), y_pred (n, H, 3)."""
    q = keras.ops.convert_to_tensor(np.asarray(QUANTILES, dtype=np.float32))
    diff = keras.ops.expand_dims(y_true, -1) - y_pred
    return keras.ops.mean(keras.ops.maximum(q * diff, (q - 1.0) * diff))


def build(params: ForecasterParams) -> keras.Model:
    inputs = keras.Input((params.window_bins, len(SERIES_CHANNELS)), name="bins")
    hidden = keras.layers.LSTM(params.units, name="lstm")(inputs)
    hidden = keras.layers.Dense(params.dense_units, activation="relu", name="dense")(hidden)
    raw = keras.layers.Dense(3 * len(params.horizons), name="raw")(hidden)
    outputs = QuantileHead(len(params.horizons), name="quantiles")(raw)
    return keras.Model(inputs, outputs, name="linkcast_forecaster")


def train(
    params: ForecasterParams,
    train_w: Windows,
    targets: np.ndarray,
    val_w: Windows,
    val_targets: np.ndarray,
    *,
    verbose: int = 2,
) -> tuple[keras.Model, dict[str, list[float]]]:
    """Fit on the training windows, stopping early on the validation loss."""
    keras.utils.set_random_seed(params.seed)
    model = build(params)
    model.compile(optimizer=keras.optimizers.Adam(params.learning_rate), loss=pinball_loss)
    stop = keras.callbacks.EarlyStopping(
        patience=params.patience, restore_best_weights=True, monitor="val_loss"
    )
    history = model.fit(
        train_w.x,
        targets.astype(np.float32),
        validation_data=(val_w.x, val_targets.astype(np.float32)),
        epochs=params.epochs,
        batch_size=params.batch_size,
        shuffle=True,
        callbacks=[stop],
        verbose=verbose,
    )
    return model, {k: [float(v) for v in vs] for k, vs in history.history.items()}


def load(path: str) -> keras.Model:
    """A saved forecaster, in Keras' safe mode (no arbitrary code runs)."""
    return keras.saving.load_model(
        path, compile=False, safe_mode=True, custom_objects={"QuantileHead": QuantileHead}
    )


def export_weights(model: keras.Model) -> dict[str, np.ndarray]:
    """The weights as plain arrays, for the numpy engine (saved with np.savez, no pickle)."""
    lstm, dense, raw = (model.get_layer(n) for n in ("lstm", "dense", "raw"))
    kernel, recurrent, bias = lstm.get_weights()
    dense_w, dense_b = dense.get_weights()
    raw_w, raw_b = raw.get_weights()
    return {
        "lstm_kernel": kernel,
        "lstm_recurrent": recurrent,
        "lstm_bias": bias,
        "dense_w": dense_w,
        "dense_b": dense_b,
        "raw_w": raw_w,
        "raw_b": raw_b,
    }


def export_tflite(model: keras.Model, window_bins: int, batch: int) -> bytes:
    """The model as a TFLite flatbuffer with a fixed batch size, its weights frozen.

    Fixed, because the LSTM's loop converts to builtin ops only with known
    shapes; frozen, because with resource variables the interpreter fails to
    read them. ``convert_variables_to_constants_v2`` is TensorFlow's own helper
    for that.
    """
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    spec = tf.TensorSpec((batch, window_bins, len(SERIES_CHANNELS)), tf.float32)
    concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [convert_variables_to_constants_v2(concrete)]
    )
    return bytes(converter.convert())
