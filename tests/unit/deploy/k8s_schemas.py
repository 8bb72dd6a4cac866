"""Custom resources checked against their CRDs' OpenAPI v3 schemas, with jsonschema.

A CRD's ``openAPIV3Schema`` is JSON Schema (draft 4 semantics, e.g. a boolean
``exclusiveMinimum``) plus Kubernetes extensions. This turns those into plain JSON
Schema the way the API server reads them:

- ``x-kubernetes-int-or-string``: an integer or a string;
- ``nullable``: null is allowed too;
- an object with ``properties`` and neither ``additionalProperties`` nor
  ``x-kubernetes-preserve-unknown-fields`` takes no other field (the server would drop
  an unknown field, or refuse it under strict field validation: here it is an error,
  so a misspelt field is caught).

CEL rules (``x-kubernetes-validations``) are not evaluated: no Python evaluator of
Kubernetes CEL is at hand; they are counted in :meth:`CrdSchemas.cel_rules`.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

Schema = dict[str, Any]
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: the CRDs are large
DROPPED = {"nullable", "description", "example", "externalDocs"}


def json_schema(node: Any) -> Any:
    """The JSON Schema of one CRD schema node (recursively)."""
    if isinstance(node, list):
        return [json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: Schema = {}
    for key, value in node.items():
        if key in DROPPED or key.startswith("x-kubernetes-"):
            continue
        if key in {"properties", "patternProperties", "definitions"}:
            out[key] = {name: json_schema(s) for name, s in value.items()}
        elif key in {"items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"}:
            out[key] = json_schema(value)
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string") and "type" not in out:
        out["type"] = ["integer", "string"]
    if node.get("nullable") and "type" in out:
        types = out["type"] if isinstance(out["type"], list) else [out["type"]]
        out["type"] = [*types, "null"]
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def _count_cel(node: Any) -> int:
    if isinstance(node, list):
        return sum(_count_cel(n) for n in node)
    if not isinstance(node, dict):
        return 0
    own = len(node.get("x-kubernetes-validations", []))
    return own + sum(_count_cel(v) for v in node.values())


@dataclass(frozen=True)
class CrdSchemas:
    """Validators by (apiVersion, kind), from a folder of CRD YAML files."""

    validators: dict[tuple[str, str], jsonschema.Draft4Validator]
    cel: dict[tuple[str, str], int]

    @classmethod
    def load(cls, folder: Path, plurals: set[str]) -> "CrdSchemas":
        """The CRDs of ``folder`` named ``<group>_<plural>.yaml`` for the given plurals."""
        validators = {}
        cel = {}
        paths = [p for p in sorted(folder.glob("*.yaml")) if p.stem.split("_")[-1] in plurals]
        assert {p.stem.split("_")[-1] for p in paths} == plurals, f"CRDs missing in {folder}"
        for path in paths:
            for crd in yaml.load_all(path.read_text(), Loader=Loader):
                if not crd or crd.get("kind") != "CustomResourceDefinition":
                    continue
                spec = crd["spec"]
                for version in spec["versions"]:
                    if not version.get("served", True):
                        continue
                    key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                    raw = version["schema"]["openAPIV3Schema"]
                    validators[key] = jsonschema.Draft4Validator(json_schema(raw))
                    cel[key] = _count_cel(raw)
        return cls(validators, cel)

    def errors(self, manifest: dict[str, Any]) -> list[str]:
        """What the CRD's schema says about ``manifest``; no CRD for it is an error too."""
        key = (manifest["apiVersion"], manifest["kind"])
        validator = self.validators.get(key)
        if validator is None:
            return [f"no CRD serves {key[0]} {key[1]}"]
        return [
            f"{'.'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
            for e in validator.iter_errors(manifest)
        ]

    def cel_rules(self, api_version: str, kind: str) -> int:
        """CEL rules in the CRD's schema that this check does not evaluate."""
        return self.cel[(api_version, kind)]
