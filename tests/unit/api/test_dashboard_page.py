"""GET / serves the dashboard without a token, under a strict Content-Security-Policy."""

import re
from importlib import resources

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.unit.api.handfed import HandFedView


@pytest.fixture
def client(make_settings):
    with TestClient(create_app(make_settings(), view=HandFedView())) as test_client:
        yield test_client


def test_the_page_and_its_files_load_without_a_token(client):
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "connect-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    for src in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        if src == "data:,":
            continue  # the empty icon, so that the browser asks for no favicon
        assert src.startswith("/dashboard/"), src  # nothing from elsewhere (no CDN)
        asset = client.get(src)
        assert asset.status_code == 200
    assert (
        client.get("/dashboard/dashboard.js").headers["content-type"].startswith("text/javascript")
    )
    assert client.get("/dashboard/../app.py").status_code == 404
    assert client.get("/dashboard/nothing.js").status_code == 404


def test_the_page_keeps_the_token_out_of_storage_and_urls():
    script = (resources.files("api") / "dashboard" / "dashboard.js").read_text()
    assert "localStorage" not in script
    assert "sessionStorage" not in script
    assert "document.cookie" not in script
    assert "access_token=" not in script  # never in a URL
    assert "innerHTML" not in script  # text from the API goes in as text
