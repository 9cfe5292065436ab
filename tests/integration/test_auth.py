"""Every /api/v1 endpoint needs a token (401), roles are enforced (403), pages need a login and
state-changing page requests need the CSRF token."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fastlims.bootstrap import System
from fastlims.users.models import ApiToken, User
from tests.catalog_helpers import applicable
from tests.conftest import PASSWORD, Actor


def api_routes(client: TestClient) -> list[tuple[str, str]]:
    """Every /api/v1 operation the app documents (its OpenAPI is the list partners see)."""
    spec = client.get("/openapi.json").json()
    routes = []
    for path, operations in spec["paths"].items():
        if path.startswith("/api/v1"):
            concrete = path.replace("{request_number}", "TR-2026-000001")
            routes.extend((method.upper(), concrete) for method in operations)
    return routes


def test_every_api_endpoint_answers_401_without_a_token(client: TestClient) -> None:
    routes = api_routes(client)
    assert len(routes) >= 9
    for method, path in routes:
        response = client.request(method, path)
        assert response.status_code == 401, (method, path, response.status_code)
        assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer flt_not-a-real-token", "Basic cml0YTpwdw==", "Bearer "])
def test_wrong_tokens_are_refused(client: TestClient, requester: Actor, header: str) -> None:
    assert client.get("/api/v1/uuts", headers={"Authorization": header}).status_code == 401


def test_revoked_token_and_disabled_user_are_refused(client: TestClient, system: System, requester: Actor) -> None:
    assert client.get("/api/v1/me", headers=requester.headers).status_code == 200
    with system.database.transaction() as session:
        session.scalars(select(User).where(User.username == "rita")).one().is_active = False
    assert client.get("/api/v1/me", headers=requester.headers).status_code == 401
    with system.database.transaction() as session:
        session.scalars(select(User).where(User.username == "rita")).one().is_active = True
        from fastlims.timeutil import utcnow

        for token in session.scalars(select(ApiToken)):
            token.revoked_at = utcnow()
    assert client.get("/api/v1/me", headers=requester.headers).status_code == 401


def test_tokens_are_stored_only_as_digests(system: System, requester: Actor) -> None:
    with system.database.transaction() as session:
        stored = session.scalars(select(ApiToken)).one()
    assert requester.token not in (stored.token_hash, stored.prefix) and len(stored.token_hash) == 64


@pytest.mark.parametrize(("role_fixture", "expected"), [("requester", 403), ("manager", 403), ("admin", 200)])
def test_user_administration_is_for_admins(
    client: TestClient, request: pytest.FixtureRequest, role_fixture: str, expected: int
) -> None:
    actor: Actor = request.getfixturevalue(role_fixture)
    assert client.get("/api/v1/users", headers=actor.headers).status_code == expected
    created = client.post(
        "/api/v1/users",
        headers=actor.headers,
        json={"username": "newbie", "role": "requester", "password": "long-enough-pw"},
    )
    assert created.status_code == (201 if expected == 200 else 403)


def test_admin_user_creation_validates(client: TestClient, admin: Actor) -> None:
    short = client.post(
        "/api/v1/users",
        headers=admin.headers,
        json={"username": "newbie", "role": "requester", "password": "short"},
    )
    assert short.status_code == 422 and "at least 10 characters" in short.text
    bad_role = client.post(
        "/api/v1/users",
        headers=admin.headers,
        json={"username": "newbie", "role": "overlord", "password": "long-enough-pw"},
    )
    assert bad_role.status_code == 422


# --- pages -----------------------------------------------------------------------------------

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(client: TestClient, path: str) -> str:
    match = CSRF.search(client.get(path).text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client: TestClient, username: str, password: str = PASSWORD) -> None:
    token = csrf_from(client, "/login")
    response = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


@pytest.mark.parametrize(
    "path", ["/", "/requests", "/requests/new", "/requests/TR-2026-000001", "/fragments/test-names"]
)
def test_pages_redirect_to_login(client: TestClient, path: str) -> None:
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == f"/login?next={path}"


def test_login_with_a_wrong_password_fails(client: TestClient, requester: Actor) -> None:
    token = csrf_from(client, "/login")
    response = client.post("/login", data={"username": "rita", "password": "wrong-password", "csrf_token": token})
    assert response.status_code == 401 and "wrong password" in response.text
    assert client.get("/", follow_redirects=False).status_code == 303


def test_login_without_csrf_token_is_rejected(client: TestClient, requester: Actor) -> None:
    client.get("/login")
    response = client.post("/login", data={"username": "rita", "password": PASSWORD})
    assert response.status_code == 403 and "CSRF" in response.text
    forged = client.post("/login", data={"username": "rita", "password": PASSWORD, "csrf_token": "forged"})
    assert forged.status_code == 403


def test_login_then_pages_and_open_redirects_are_refused(client: TestClient, requester: Actor) -> None:
    token = csrf_from(client, "/login")
    response = client.post(
        "/login",
        data={"username": "rita", "password": PASSWORD, "csrf_token": token, "next": "//evil.example/"},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/"
    assert client.get("/").status_code == 200


def test_state_changing_pages_need_the_csrf_token(client: TestClient, system: System, requester: Actor) -> None:
    login(client, "rita")
    combo = applicable(system)
    form = {k: str(v) for k, v in combo.body(preferred_date="2099-06-01T09:00").items()}
    refused = client.post("/requests/new", data=form, follow_redirects=False)
    assert refused.status_code == 403
    with_header = client.post("/requests/new", data=form, headers={"X-CSRF-Token": "wrong"}, follow_redirects=False)
    assert with_header.status_code == 403
    token = csrf_from(client, "/requests/new")
    accepted = client.post("/requests/new", data={**form, "csrf_token": token}, follow_redirects=False)
    assert accepted.status_code == 303 and accepted.headers["location"].startswith("/requests/TR-")
    number = accepted.headers["location"].rsplit("/", 1)[1]
    assert client.post(f"/requests/{number}/cancel", data={}).status_code == 403
    assert client.post("/logout", data={}).status_code == 403


def test_logout_ends_the_session(system: System, client: TestClient, requester: Actor) -> None:
    from fastlims.web.app import create_app

    login(client, "rita")
    copied = client.cookies.get("fastlims_session")
    assert copied and client.get("/", follow_redirects=False).status_code == 200
    token = csrf_from(client, "/")
    assert client.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 303
    # On the server too: a copy of the session cookie taken before the logout opens no page.
    with TestClient(create_app(system)) as other:
        other.cookies.set("fastlims_session", copied)
        replayed = other.get("/", follow_redirects=False)
        assert replayed.status_code == 303 and replayed.headers["location"] == "/login?next=/"
    login(client, "rita")  # a new login works again
    assert client.get("/", follow_redirects=False).status_code == 200
