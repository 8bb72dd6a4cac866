"""The models the API predicts with: the stream's current versions, swapped when announced.

The API loads the current classifier and forecaster from its registry
(``LINKCAST_MODELS_DIR``, falling back to the packaged models) on first use.
When the models topic announces another version (the view follows it), the
next prediction loads that version, with the same sha256 and feature-schema
checks as the worker; if it cannot be loaded the old one stays and the
failure is logged.
"""

import logging
import threading
from typing import Any, cast

from models.registry import Kind, Registry
from models.runtime import Classifier, Forecaster, load_classifier, load_forecaster
from streams.schemas import ModelAnnouncement

log = logging.getLogger(__name__)


class Models:
    """The classifier and forecaster in use, each loaded lazily and kept until announced away."""

    def __init__(self, registry: Registry, announced: dict[str, ModelAnnouncement]) -> None:
        self.registry = registry
        self.announced = announced  # the view's live dict: kind -> latest announcement
        self._loaded: dict[str, Any] = {}
        self._failed: set[tuple[str, str]] = set()  # announced versions that would not load
        self._lock = threading.Lock()  # sync routes run in a thread pool

    def classifier(self) -> Classifier:
        model: Classifier = self._current("classifier")
        return model

    def forecaster(self) -> Forecaster:
        model: Forecaster = self._current("forecaster")
        return model

    def _current(self, kind: str) -> Any:
        loaded = self._loaded.get(kind)
        announcement = self.announced.get(kind)
        wanted = announcement.version if announcement is not None else None
        if loaded is not None and (
            wanted in (None, loaded.version) or (kind, wanted) in self._failed
        ):
            return loaded
        with self._lock:
            loaded = self._loaded.get(kind)
            if loaded is not None and (
                wanted in (None, loaded.version) or (kind, wanted) in self._failed
            ):
                return loaded
            load = load_classifier if kind == "classifier" else load_forecaster
            known = cast(Kind, kind)
            try:
                fresh = load(
                    self.registry.get(known, wanted) if wanted else self.registry.current(known)
                )
            except Exception as exc:  # keep what serves now, or the registry's current one
                self._failed.add((kind, str(wanted)))
                if loaded is not None:
                    log.error(
                        "keeping %s %s: announced %s cannot be loaded: %s",
                        kind,
                        loaded.version,
                        wanted,
                        exc,
                    )
                    return loaded
                log.error(
                    "announced %s %s cannot be loaded (%s); using the registry's current one",
                    kind,
                    wanted,
                    exc,
                )
                fresh = load(self.registry.current(known))
            self._loaded[kind] = fresh
            log.info("predicting with %s %s", kind, fresh.version)
            return fresh
