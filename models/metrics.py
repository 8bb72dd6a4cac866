"""Forecast error measures, per horizon (columns), over windows (rows)."""

import numpy as np


def mae(forecast: np.ndarray, actual: np.ndarray) -> np.ndarray:
    return np.mean(np.abs(forecast - actual), axis=0)


def rmse(forecast: np.ndarray, actual: np.ndarray) -> np.ndarray:
    return np.sqrt(np.mean((forecast - actual) ** 2, axis=0))


def smape(forecast: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Symmetric mean absolute percentage error in percent, 0..200; 0/0 counts as 0."""
    denominator = np.abs(forecast) + np.abs(actual)
    ratio = np.divide(
        2.0 * np.abs(forecast - actual),
        denominator,
        out=np.zeros_like(denominator, dtype=np.float64),
        where=denominator > 0,
    )
    return 100.0 * np.mean(ratio, axis=0)


def wape(forecast: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Weighted absolute percentage error: sum |error| / sum |actual|, in percent.

    Scale-free like sMAPE, but a bin of zero traffic forecast as a little
    traffic costs that little, not 200 % as in sMAPE: fair on sparse links.
    """
    total = np.sum(np.abs(actual), axis=0)
    return 100.0 * np.sum(np.abs(forecast - actual), axis=0) / np.maximum(total, 1e-12)


def coverage(lower: np.ndarray, upper: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Share of actual values inside [lower, upper]."""
    return np.mean((actual >= lower) & (actual <= upper), axis=0)


def errors(forecast: np.ndarray, actual: np.ndarray) -> dict[str, list[float]]:
    """MAE, RMSE, sMAPE and WAPE per horizon, as plain lists for a JSON report."""
    return {
        "mae": mae(forecast, actual).tolist(),
        "rmse": rmse(forecast, actual).tolist(),
        "smape": smape(forecast, actual).tolist(),
        "wape": wape(forecast, actual).tolist(),
    }
