"""Schemathesis generates requests from the app's OpenAPI document and checks every answer.

In-process (ASGI), with a valid read token and a ready view filled with
synthetic records, so generated requests reach real answers as well as the
error ones. The checks are schemathesis' defaults: no 5xx, every status and
content type declared, every body valid against its schema, and the API
refusing what its schema forbids. ``/v1/stream`` is left out: it never ends,
and schemathesis reads a body to its end; tests/integration/test_api_stream.py
and the contract test cover it.
"""

import json
import tempfile
import time
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from api.app import create_app
from api.auth import hash_secret
from api.settings import ApiSettings
from api.synthetic import fill
from tests.unit.api.conftest import KEY, SECRETS
from tests.unit.api.handfed import HandFedView


def _app():  # type: ignore[no-untyped-def]
    folder = Path(tempfile.mkdtemp(prefix="linkcast-schemathesis-"))
    clients = folder / "clients.json"
    entry = {
        "id": "reader",
        "secret_hash": hash_secret(SECRETS["reader"], 1000),
        "scopes": ["read"],
    }
    clients.write_text(json.dumps({"clients": [entry]}))
    view = HandFedView()
    fill(view.state, links=5, windows=10, now_s=time.time(), alert_every=2)
    api_settings = ApiSettings(
        api_jwt_key=KEY,  # type: ignore[arg-type]  # pydantic turns it into a SecretStr
        api_clients_file=clients,
        api_rate_per_s=1e9,
        api_rate_burst=10**9,
        api_access_log=False,
    )
    app = create_app(api_settings, view=view)
    return app, app.state.ctx.security.issuer.issue("reader", ["read"])


APP, TOKEN = _app()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP).exclude(path="/v1/stream")


def crossed_bounds(query: dict | None) -> bool:
    """min_utilisation > max_utilisation: valid to the schema, which cannot relate two
    parameters, but refused with 422 (tested in test_contract.py)."""
    low, high = (_number((query or {}).get(k)) for k in ("min_utilisation", "max_utilisation"))
    return low is not None and high is not None and low > high


def _number(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]  # a query value: a number or its text
    except (TypeError, ValueError):
        return None


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_breaks_the_api_or_its_schema(case):
    excluded = [positive_data_acceptance] if crossed_bounds(case.query) else []
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, excluded_checks=excluded)
