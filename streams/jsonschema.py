"""JSON Schema files of every topic's records, generated from streams.schemas."""

import json
from pathlib import Path

from streams.schemas import TOPIC_RECORDS

SCHEMA_ID_BASE = "https://linkcast.dev/schema/v1/"


def topic_schemas() -> dict[str, dict[str, object]]:
    """The JSON Schema of each topic's values, by the topic's role ('flows', 'windows', ...)."""
    schemas = {}
    for role, model in TOPIC_RECORDS.items():
        schema = model.model_json_schema(mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"{SCHEMA_ID_BASE}{role}.json"
        schemas[role] = schema
    return schemas


def write_schemas(out_dir: Path) -> list[Path]:
    """Write ``<role>.schema.json`` for every topic into ``out_dir``; return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for role, schema in topic_schemas().items():
        path = out_dir / f"{role}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
