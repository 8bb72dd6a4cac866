"""The verified-token memory: it saves the verification, never the expiry check or a forgery's."""

import pytest

from api.auth import LEEWAY_S, TokenError, TokenIssuer
from api.guard import VerifiedTokens
from tests.unit.api.conftest import KEY


class CountingIssuer(TokenIssuer):
    calls = 0

    def verify(self, token: str):  # type: ignore[no-untyped-def]  # test double's signature
        CountingIssuer.calls += 1
        return super().verify(token)


@pytest.fixture
def issuer() -> CountingIssuer:
    CountingIssuer.calls = 0
    return CountingIssuer(KEY.encode(), "linkcast", "linkcast-api", ttl_s=60)


def test_a_token_that_verified_is_not_verified_again_until_it_expires(issuer):
    tokens = VerifiedTokens(issuer)
    token = issuer.issue("reader", ["read"])
    first = tokens.verify(token)
    assert first.client_id == "reader"
    assert tokens.verify(token).scopes == frozenset({"read"})
    assert CountingIssuer.calls == 1  # the second came from memory


def test_past_its_expiry_a_remembered_token_is_verified_in_full_again(issuer):
    tokens = VerifiedTokens(issuer)
    token = issuer.issue("reader", ["read"])
    principal = tokens.verify(token)
    assert tokens.verify(token, now_s=principal.expires_at_s + LEEWAY_S - 1) == principal
    assert CountingIssuer.calls == 1
    tokens.verify(token, now_s=principal.expires_at_s + LEEWAY_S)  # the issuer decides now
    assert CountingIssuer.calls == 2


def test_an_expired_token_is_refused():
    issuer = TokenIssuer(KEY.encode(), "linkcast", "linkcast-api", ttl_s=10)
    stale = issuer.issue("reader", ["read"], now_s=1000.0)
    with pytest.raises(TokenError, match="expired"):
        VerifiedTokens(issuer).verify(stale)


def test_a_forged_token_is_checked_in_full_every_time(issuer):
    tokens = VerifiedTokens(issuer)
    forged = issuer.issue("reader", ["read"])[:-2] + "xx"
    for _ in range(3):
        with pytest.raises(TokenError):
            tokens.verify(forged)
    assert CountingIssuer.calls == 3


def test_the_memory_is_bounded(issuer):
    tokens = VerifiedTokens(issuer, max_entries=2)
    for i in range(5):
        tokens.verify(issuer.issue(f"c{i}", ["read"]))
    assert len(tokens._known) <= 2
