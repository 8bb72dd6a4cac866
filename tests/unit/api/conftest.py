"""API test settings: development mode with a known key and clients file."""

import json
from pathlib import Path

import pytest

from api.auth import hash_secret
from api.settings import ApiSettings

KEY = "k" * 48
SECRETS = {"reader": "reader-secret", "predictor": "predictor-secret", "boss": "boss-secret"}
SCOPES = {"reader": ["read"], "predictor": ["predict"], "boss": ["read", "predict", "admin"]}


def write_clients(path: Path) -> Path:
    clients = [
        # few iterations: the tests verify secrets often; production hashes use the default
        {"id": cid, "secret_hash": hash_secret(secret, iterations=1000), "scopes": SCOPES[cid]}
        for cid, secret in SECRETS.items()
    ]
    path.write_text(json.dumps({"clients": clients}))
    return path


@pytest.fixture
def clients_file(tmp_path: Path) -> Path:
    return write_clients(tmp_path / "clients.json")


@pytest.fixture
def make_settings(clients_file: Path):
    def make(**overrides: object) -> ApiSettings:
        values: dict[str, object] = {
            "api_mode": "production",
            "api_jwt_key": KEY,
            "api_clients_file": clients_file,
            **overrides,
        }
        return ApiSettings(**values)  # type: ignore[arg-type]

    return make
