"""Security of the API: tokens, scopes, rate limits, body limits, CORS, production mode."""

import base64
import json
import time

import jwt
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import AuthConfigError, RateLimiter, hash_secret, load_clients, verify_secret
from tests.unit.api.conftest import KEY, SECRETS
from tests.unit.api.handfed import HandFedView

GUARDED = [
    "/v1/links",
    "/v1/links/a",
    "/v1/links/a/history",
    "/v1/alerts",
    "/v1/models",
    "/v1/stream",
]
OPEN = ["/health", "/ready", "/metrics", "/"]


@pytest.fixture
def app_client(make_settings):
    with TestClient(create_app(make_settings(), view=HandFedView())) as client:
        yield client


def token_for(client: TestClient, cid: str, scope: str | None = None) -> str:
    data = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    answer = client.post("/v1/token", data=data, auth=(cid, SECRETS[cid]))
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def get(client: TestClient, path: str, token: str | None) -> int:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return client.get(path, headers=headers).status_code


def claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    return {
        "iss": "linkcast",
        "aud": "linkcast-api",
        "sub": "reader",
        "iat": now,
        "exp": now + 60,
        "scope": "read",
        **overrides,
    }


def unsigned(payload: dict[str, object]) -> str:
    """An ``alg: none`` token, as an attacker would forge it."""

    def part(d: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


# ---- the token endpoint ----------------------------------------------------------


def test_a_client_gets_a_token_with_expiry_issuer_audience_and_its_scopes(app_client):
    answer = app_client.post(
        "/v1/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "boss",
            "client_secret": "boss-secret",
        },
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["scope"] == "read predict admin"
    decoded = jwt.decode(
        body["access_token"], KEY, algorithms=["HS256"], audience="linkcast-api", issuer="linkcast"
    )
    assert decoded["sub"] == "boss"
    assert decoded["exp"] - decoded["iat"] == 900


def test_a_client_may_ask_for_fewer_scopes_but_not_for_more(app_client):
    assert (
        jwt.decode(token_for(app_client, "boss", "read"), options={"verify_signature": False})[
            "scope"
        ]
        == "read"
    )
    answer = app_client.post(
        "/v1/token",
        data={"grant_type": "client_credentials", "scope": "read admin"},
        auth=("reader", SECRETS["reader"]),
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_scope"


@pytest.mark.parametrize(
    ("data", "auth", "status", "error"),
    [
        ({"grant_type": "client_credentials"}, ("reader", "wrong"), 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, ("nobody", "x"), 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, None, 401, "invalid_client"),
        ({"grant_type": "password"}, ("reader", "reader-secret"), 400, "unsupported_grant_type"),
        ({}, ("reader", "reader-secret"), 400, "invalid_request"),
    ],
)
def test_bad_token_requests_get_oauth_errors(app_client, data, auth, status, error):
    answer = app_client.post("/v1/token", data=data, auth=auth)
    assert answer.status_code == status
    assert answer.json()["error"] == error
    assert answer.headers["Cache-Control"] == "no-store"


# ---- bearer tokens on every guarded route ---------------------------------------


def forged_tokens() -> dict[str, str]:
    return {
        "malformed": "not.a.token",
        "garbage": "x" * 40,
        "expired": jwt.encode(claims(iat=1, exp=2), KEY, algorithm="HS256"),
        "wrong key": jwt.encode(claims(), "w" * 48, algorithm="HS256"),
        "alg none": unsigned(claims()),
        "wrong audience": jwt.encode(claims(aud="someone-else"), KEY, algorithm="HS256"),
        "wrong issuer": jwt.encode(claims(iss="evil"), KEY, algorithm="HS256"),
        "no expiry": jwt.encode(
            {k: v for k, v in claims().items() if k != "exp"}, KEY, algorithm="HS256"
        ),
        "HS512 with the right key": jwt.encode(claims(), KEY, algorithm="HS512"),
    }


@pytest.mark.parametrize("path", GUARDED)
@pytest.mark.parametrize("kind", list(forged_tokens()))
def test_bad_tokens_get_401(app_client, path, kind):
    answer = app_client.get(path, headers={"Authorization": f"Bearer {forged_tokens()[kind]}"})
    assert answer.status_code == 401, kind
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert answer.json()["detail"]


@pytest.mark.parametrize("path", GUARDED)
@pytest.mark.parametrize("header", [None, "Bearer", "Basic cmVhZGVyOnJlYWRlci1zZWNyZXQ=", "x"])
def test_a_missing_or_non_bearer_authorization_gets_401(app_client, path, header):
    headers = {} if header is None else {"Authorization": header}
    assert app_client.get(path, headers=headers).status_code == 401


@pytest.mark.parametrize("path", GUARDED)
def test_a_token_without_the_scope_gets_403(app_client, path):
    answer = app_client.get(
        path, headers={"Authorization": f"Bearer {token_for(app_client, 'predictor')}"}
    )
    assert answer.status_code == 403
    assert "read" in answer.json()["detail"]


@pytest.mark.parametrize("path", OPEN)
def test_health_and_ready_need_no_token(app_client, path):
    assert app_client.get(path).status_code == 200


# ---- rate limits, body limits, CORS ------------------------------------------------


def test_a_client_over_its_rate_gets_429_with_retry_after(make_settings):
    settings = make_settings(api_rate_per_s=0.5, api_rate_burst=3)
    with TestClient(create_app(settings, view=HandFedView())) as client:
        token = token_for(client, "reader")
        statuses = [get(client, "/v1/links", token) for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = client.get("/v1/links", headers={"Authorization": f"Bearer {token}"})
        assert int(refused.headers["Retry-After"]) >= 1
        other = token_for(client, "boss")  # another client has its own bucket
        assert get(client, "/v1/links", other) == 200


def test_the_rate_limiter_refills_over_time():
    limiter = RateLimiter(rate_per_s=2.0, burst=2)
    assert limiter.take("a", now_s=0.0) == 0
    assert limiter.take("a", now_s=0.0) == 0
    assert limiter.take("a", now_s=0.0) == pytest.approx(0.5)
    assert limiter.take("a", now_s=0.5) == 0


def test_a_body_over_the_limit_gets_413_declared_or_not(make_settings):
    settings = make_settings(api_body_max_bytes=2048)
    with TestClient(create_app(settings, view=HandFedView())) as client:
        big = {"grant_type": "client_credentials", "scope": "x" * 5000}
        assert client.post("/v1/token", data=big).status_code == 413

        def chunks():
            yield b"grant_type=client_credentials&scope="
            for _ in range(10):
                yield b"x" * 1000

        chunked = client.post(
            "/v1/token",
            content=chunks(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert chunked.status_code == 413
        assert "2048" in chunked.json()["detail"]
        assert client.get("/health").status_code == 200  # and the API carries on


def test_cors_is_off_unless_configured(make_settings):
    preflight = {
        "Origin": "https://example.org",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "Authorization",
    }
    with TestClient(create_app(make_settings(), view=HandFedView())) as client:
        answer = client.options("/v1/links", headers=preflight)
        assert "access-control-allow-origin" not in answer.headers
    settings = make_settings(api_cors_origins=["https://example.org"])
    with TestClient(create_app(settings, view=HandFedView())) as client:
        answer = client.options("/v1/links", headers=preflight)
        assert answer.headers["access-control-allow-origin"] == "https://example.org"


# ---- configuration ----------------------------------------------------------------


def test_production_refuses_to_start_without_a_key_or_clients_of_its_own(make_settings):
    with pytest.raises(AuthConfigError, match="LINKCAST_API_JWT_KEY"):
        create_app(make_settings(api_jwt_key=None), view=HandFedView())
    with pytest.raises(AuthConfigError, match="LINKCAST_API_CLIENTS_FILE"):
        create_app(make_settings(api_clients_file=None), view=HandFedView())
    with pytest.raises(AuthConfigError, match="at least 32 bytes"):
        create_app(make_settings(api_jwt_key="short"), view=HandFedView())


def test_development_mode_makes_a_throwaway_key(make_settings):
    settings = make_settings(api_mode="development", api_jwt_key=None)
    with TestClient(create_app(settings, view=HandFedView())) as client:
        token = token_for(client, "reader")
        assert get(client, "/v1/links", token) == 200
        with pytest.raises(jwt.InvalidSignatureError):
            jwt.decode(token, KEY, algorithms=["HS256"], audience="linkcast-api")


def test_secret_hashes_verify_only_their_secret():
    stored = hash_secret("s3cret", iterations=1000)
    assert verify_secret("s3cret", stored)
    assert not verify_secret("s3cret ", stored)
    assert not verify_secret("s3cret", "md5$1$x$y")
    assert not verify_secret("s3cret", "garbage")
    assert hash_secret("s3cret") != hash_secret("s3cret")  # salted


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("{not json", "not JSON"),
        ('{"clients": [{"id": "a", "secret_hash": "plain", "scopes": ["read"]}]}', "secret_hash"),
        ('{"clients": [{"id": "a", "secret_hash": "%s", "scopes": ["root"]}]}', "scopes"),
        ('{"clients": [], "extra": 1}', "extra"),
    ],
)
def test_a_bad_clients_file_is_refused_with_the_reason(tmp_path, content, says):
    path = tmp_path / "clients.json"
    good_hash = hash_secret("x", iterations=1000)
    path.write_text(content.replace("%s", good_hash))
    with pytest.raises(AuthConfigError, match=says):
        load_clients(path)
