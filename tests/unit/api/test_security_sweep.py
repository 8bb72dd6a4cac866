"""Every route of the API, enumerated from the app, against bypass attempts and bad bodies.

test_auth.py checks the token rules on a fixed list of GET routes; here the
routes come from the app itself, so a new route is covered the day it is
added: unless it is in PUBLIC, it must refuse a request without a valid token
(and every forged one) whatever its method. Then: tokens in the wrong place,
path tricks around the guard and the fast path of ``GET /v1/links/{link}``,
undeclared methods, bodies over the limit on every POST route, and
hypothesis-made bad bodies on every POST route: a 4xx with a reason, never a 5xx.
"""

import base64
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.app import create_app
from api.settings import ApiSettings
from tests.unit.api.conftest import KEY, SECRETS
from tests.unit.api.handfed import HandFedView
from tests.unit.api.test_auth import claims, forged_tokens, token_for, unsigned

#: Routes that answer without a bearer token, and why. Anything else must refuse.
PUBLIC = {
    ("GET", "/health"),  # orchestrators
    ("GET", "/ready"),
    ("GET", "/metrics"),  # Prometheus
    ("GET", "/"),  # the dashboard page; it signs in itself
    ("GET", "/dashboard/{asset}"),
    ("POST", "/v1/token"),  # trades client credentials for a token
    ("GET", "/openapi.json"),  # FastAPI's API description and its pages
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
}


def _routes() -> list[tuple[str, str]]:
    app = create_app(ApiSettings(api_mode="development", api_access_log=False), view=HandFedView())
    found: set[tuple[str, str]] = set()

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            included = getattr(route, "original_router", None)  # FastAPI >= 0.128 wraps routers
            if included is not None:
                walk(included.routes, prefix + route.include_context.prefix)
                continue
            for method in getattr(route, "methods", None) or ():
                if method not in {"HEAD", "OPTIONS"}:
                    found.add((method, prefix + route.path))

    walk(app.routes, "")
    return sorted(found)


ROUTES = _routes()
GUARDED = [r for r in ROUTES if r not in PUBLIC]
POSTS = [path for method, path in ROUTES if method == "POST"]


def concrete(path: str) -> str:
    """A request path for a route template: each parameter becomes 'a'."""
    return re.sub(r"\{[^}]+\}", "a", path)


def test_the_route_list_is_what_the_app_serves():
    assert {"/v1/links/{link:path}", "/v1/predict/bandwidth", "/v1/classify", "/v1/stream"} <= {
        p for _, p in GUARDED
    }
    assert set(ROUTES) >= PUBLIC, (
        f"PUBLIC names routes the app no longer has: {PUBLIC - set(ROUTES)}"
    )


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    from tests.unit.api.conftest import write_clients

    clients = write_clients(tmp_path_factory.mktemp("sweep") / "clients.json")
    api = ApiSettings(
        api_mode="production",
        api_jwt_key=KEY,  # type: ignore[arg-type]  # pydantic makes it a SecretStr
        api_clients_file=clients,
        api_rate_per_s=1e9,
        api_rate_burst=10**9,
        api_body_max_bytes=4096,
        api_access_log=False,
    )
    with TestClient(create_app(api, view=HandFedView())) as test_client:
        yield test_client


def call(client: TestClient, method: str, path: str, **kwargs: Any) -> Any:
    if method == "POST":
        kwargs.setdefault("json", {})
    return client.request(method, path, **kwargs)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def more_forged_tokens() -> dict[str, str]:
    """Forgeries beyond test_auth.forged_tokens()."""
    good = jwt.encode(claims(scope="read predict admin"), KEY, algorithm="HS256")
    header, payload, signature = good.split(".")
    return {
        "alg None capitalised": unsigned(claims()).replace(
            _b64({"alg": "none", "typ": "JWT"}), _b64({"alg": "None", "typ": "JWT"})
        ),
        "alg none keeping the signature": f"{_b64({'alg': 'none'})}.{payload}.{signature}",
        "claims changed after signing": (
            f"{header}.{_b64(claims(sub='boss', scope='read predict admin admin'))}.{signature}"
        ),
        "RS256 header, made-up signature": f"{_b64({'alg': 'RS256', 'typ': 'JWT'})}.{payload}."
        + base64.urlsafe_b64encode(b"s" * 256).rstrip(b"=").decode(),
        "not yet valid": jwt.encode(claims(nbf=int(time.time()) + 3600), KEY, algorithm="HS256"),
        "scope as a list": jwt.encode(claims(scope=["read", "predict"]), KEY, algorithm="HS256"),
        "subject as a number": jwt.encode(claims(sub=7), KEY, algorithm="HS256"),
        "expiry as text": jwt.encode(claims(exp="tomorrow"), KEY, algorithm="HS256"),
        "wrong key of the right length": jwt.encode(claims(), KEY[:-1] + "j", algorithm="HS256"),
        "no signature part": f"{header}.{payload}",
        "empty": "",
    }


ALL_FORGED = {**forged_tokens(), **more_forged_tokens()}


@pytest.mark.parametrize(("method", "path"), GUARDED)
def test_every_guarded_route_refuses_no_token_and_every_forged_one(client, method, path):
    url = concrete(path)
    answer = call(client, method, url)
    assert answer.status_code == 401, (method, path, answer.text)
    for kind, forged in ALL_FORGED.items():
        answer = call(client, method, url, headers={"Authorization": f"Bearer {forged}"})
        assert answer.status_code == 401, (method, path, kind, answer.status_code, answer.text)
        assert answer.json()["detail"], kind


@pytest.mark.parametrize(("method", "path"), GUARDED)
def test_a_token_in_the_wrong_place_or_without_the_scope_is_refused(client, method, path):
    url = concrete(path)
    boss = token_for(client, "boss")
    placed = [
        {"params": {"access_token": boss}},  # never in a URL
        {"params": {"token": boss}},
        {"cookies": {"access_token": boss}},
        {"headers": {"X-Access-Token": boss}},
        {"headers": {"Authorization": f"Basic {boss}"}},
        {"headers": {"Authorization": boss}},
        {"headers": {"Authorization": f"Bearer  {boss}x"}},
    ]
    for where in placed:
        answer = call(client, method, url, **where)
        assert answer.status_code == 401, (method, path, where, answer.status_code)
    client.cookies.clear()
    nothing = jwt.encode(claims(scope=""), KEY, algorithm="HS256")
    answer = call(client, method, url, headers={"Authorization": f"Bearer {nothing}"})
    assert answer.status_code == 403, (method, path, answer.text)
    assert answer.json()["detail"]


@pytest.mark.parametrize(("method", "path"), GUARDED)
def test_undeclared_methods_are_not_a_way_in(client, method, path):
    url = concrete(path)
    for other in ("PUT", "PATCH", "DELETE", "POST", "GET"):
        if (other, path) in ROUTES:
            continue
        answer = client.request(other, url, headers={"X-HTTP-Method-Override": method})
        assert answer.status_code in (401, 405), (other, path, answer.status_code)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/links/a/",
        "//v1/links/a",
        "/v1/links/%61",
        "/v1/links/a%2F",
        "/V1/links/a",
        "/v1/./links/a",
        "/v1/links/../links/a",
        "/v1/links/a?link=a",
        "/v1/links/a#x",
        "/v1/links//history",
        "/v1/links/a/history/",
        "/v1/linksx",
    ],
)
def test_path_tricks_do_not_get_around_the_guard(client, path):
    """Neither the fast path of GET /v1/links/{link} nor FastAPI's routing lets one through."""
    for headers in ({}, {"Authorization": f"Bearer {forged_tokens()['alg none']}"}):
        answer = client.get(path, headers=headers)
        assert answer.status_code in (401, 404, 405), (path, answer.status_code, answer.text)


@pytest.mark.parametrize("path", POSTS)
def test_a_body_over_the_limit_is_refused_on_every_post_route(client, path):
    form = path == "/v1/token"
    headers = {
        "Authorization": f"Bearer {token_for(client, 'boss')}",
        "Content-Type": "application/x-www-form-urlencoded" if form else "application/json",
    }
    big = json.dumps({"flows": ["x" * 5000]})
    assert client.post(path, content=big, headers=headers).status_code == 413

    def chunks() -> Iterator[bytes]:
        yield b'{"flows": ["'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"]}'

    chunked = client.post(path, content=chunks(), headers=headers)
    assert chunked.status_code == 413
    assert "4096" in chunked.json()["detail"]
    lying = client.post(path, content=b"{}", headers={**headers, "Content-Length": "-1"})
    assert 400 <= lying.status_code < 500
    assert client.get("/health").status_code == 200


# ---- hypothesis-made bad bodies on every POST route ----------------------------------

json_values = st.recursive(
    # Finite numbers only: Infinity and NaN are a known 500 (test_non_finite_numbers_...).
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
GOOD_BODIES: dict[str, dict[str, Any]] = {
    "/v1/predict/bandwidth": {"bin_s": 1, "bins": [{"start_s": 1_767_225_600, "bps": 1e6}]},
    "/v1/classify": {"link": "a", "ts": 1_767_225_600, "bytes": 1500, "packets": 2},
}


@st.composite
def broken_bodies(draw: st.DrawFn, path: str) -> tuple[bytes, str]:
    """(body, content type) that no POST route can accept."""
    good = GOOD_BODIES.get(path, {"grant_type": "client_credentials"})
    kind = draw(st.sampled_from(["bytes", "cut", "not object", "field", "extra"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200).filter(_not_json_object)), "application/json"
    if kind == "cut":
        whole = json.dumps(good).encode()
        return whole[: draw(st.integers(0, len(whole) - 1))], "application/json"
    if kind == "not object":
        value = draw(json_values.filter(lambda v: not isinstance(v, dict)))
        return json.dumps(value).encode(), "application/json"
    if kind == "field":  # a known field with a value of the wrong shape
        name = draw(st.sampled_from(sorted(good)))
        value = draw(
            st.lists(json_values, max_size=3)
            | st.dictionaries(st.text(max_size=4), json_values, max_size=2)
        )
        return json.dumps({**good, name: value}).encode(), "application/json"
    name = draw(
        st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12).filter(
            lambda n: n not in good
        )
    )
    return json.dumps({**good, name: draw(json_values)}).encode(), "application/json"


def _not_json_object(data: bytes) -> bool:
    try:
        return not isinstance(json.loads(data), dict)
    except (ValueError, UnicodeDecodeError):
        return True


CONTENT_TYPES = [
    "application/json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
]


@pytest.mark.parametrize("path", POSTS)
def test_bad_bodies_get_a_4xx_with_a_reason_on_every_post_route(client, path):
    if path == "/v1/token":
        basic = base64.b64encode(f"boss:{SECRETS['boss']}".encode()).decode()
        headers = {"Authorization": f"Basic {basic}"}
    else:
        headers = {"Authorization": f"Bearer {token_for(client, 'boss')}"}

    @settings(
        max_examples=60,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(broken_bodies(path), st.sampled_from(CONTENT_TYPES))
    def check(body: tuple[bytes, str], content_type: str) -> None:
        data, _ = body
        answer = client.post(path, content=data, headers={**headers, "Content-Type": content_type})
        assert 400 <= answer.status_code < 500, (
            path,
            data[:100],
            content_type,
            answer.status_code,
            answer.text[:200],
        )
        reason = answer.json()
        assert reason.get("detail") or reason.get("error"), answer.text

    check()
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize("path", ["/v1/classify", "/v1/predict/bandwidth"])
def test_a_body_not_in_utf8_without_a_json_type_gets_a_4xx(client, path):
    # It used to be a 500: FastAPI's own 422 echoed the raw bytes and could not encode them.
    headers = {"Authorization": f"Bearer {token_for(client, 'boss')}", "Content-Type": "text/plain"}
    answer = client.post(path, content=b"\xff{}", headers=headers)
    assert answer.status_code == 415
    assert "application/json" in answer.json()["detail"]


@pytest.mark.parametrize("path", ["/v1/classify", "/v1/predict/bandwidth"])
@pytest.mark.parametrize("number", [b"Infinity", b"-Infinity", b"NaN"])
def test_non_finite_numbers_in_a_refused_body_get_a_4xx(client, path, number):
    # It used to be a 500: FastAPI's own 422 echoed the number and JSON cannot hold it.
    headers = {
        "Authorization": f"Bearer {token_for(client, 'boss')}",
        "Content-Type": "application/json",
    }
    answer = client.post(path, content=b'{"bins": [' + number + b"]}", headers=headers)
    assert 400 <= answer.status_code < 500


JSON_HEADERS = {"Content-Type": "application/json"}


@pytest.mark.parametrize("number", [b"Infinity", b"-Infinity", b"NaN"])
def test_a_non_finite_number_where_a_number_goes_is_refused_by_name(client, number):
    headers = {"Authorization": f"Bearer {token_for(client, 'boss')}", **JSON_HEADERS}
    body = b'{"bins": [{"start_s": 1.0, "bps": ' + number + b"}]}"
    answer = client.post("/v1/predict/bandwidth", content=body, headers=headers)
    assert answer.status_code == 422
    [error] = answer.json()["detail"]
    assert error["loc"][-1] == "bps"
    assert error["msg"] == "Input should be a finite number"


def test_a_422_says_where_what_and_which_kind_but_never_echoes_the_input(client):
    headers = {"Authorization": f"Bearer {token_for(client, 'boss')}", **JSON_HEADERS}
    huge_name = "k" * 1000  # the body limit here is 4096 bytes
    body = {"bins": [{"start_s": 1.0, "bps": "secret-looking input"}], huge_name: 1}
    answer = client.post("/v1/predict/bandwidth", content=json.dumps(body), headers=headers)
    assert answer.status_code == 422
    errors = answer.json()["detail"]
    assert all(set(e) == {"loc", "msg", "type"} for e in errors), errors
    assert "secret-looking input" not in answer.text
    assert huge_name not in answer.text  # a client's field name is cut short
    assert {e["type"] for e in errors} == {"float_parsing", "extra_forbidden"}


def test_broken_json_gets_the_parser_reason(client):
    headers = {"Authorization": f"Bearer {token_for(client, 'boss')}", **JSON_HEADERS}
    answer = client.post("/v1/classify", content=b'{"link": ', headers=headers)
    assert answer.status_code == 422
    [error] = answer.json()["detail"]
    assert error["type"] == "json_invalid"
    assert "Expecting value" in error["msg"]
    assert error["loc"] == ["body", 9]
