"""Accounts, sessions and tokens (issue 15 items 5-7): revoking, disabling, password changes, the
login throttle and session lifetimes, each through the real app and the real ``fastlims`` command."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient
from sqlalchemy import select

from fastlims.bootstrap import System
from fastlims.cli import main
from fastlims.timeutil import utcnow
from fastlims.users import service as users
from fastlims.users.models import ApiToken
from fastlims.users.security import DEMO_PASSWORD
from fastlims.users.throttle import LoginThrottle, ThrottlePolicy
from fastlims.web import deps as web_deps
from tests.conftest import PASSWORD, Actor
from tests.integration.test_auth import csrf_from, login

NEW_PASSWORD = "a-brand-new-secret-2026"


@pytest.fixture
def cli(system: System, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunnerOn]:
    """The ``fastlims`` command on the test's database (SQLite file or PostgreSQL)."""
    monkeypatch.setenv("FASTLIMS_DATABASE_URL", system.database.url)
    monkeypatch.setenv("FASTLIMS_DATA_DIR", str(tmp_path))
    yield CliRunnerOn()


class CliRunnerOn:
    def __call__(self, *args: str, input: str | None = None) -> Result:  # noqa: A002
        return CliRunner().invoke(main, list(args), input=input)


def new_page_client(system: System) -> TestClient:
    from fastlims.web.app import create_app

    return TestClient(create_app(system))


def post_login(client: TestClient, username: str, password: str) -> object:
    token = csrf_from(client, "/login")
    return client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}, follow_redirects=False
    )


# --- item 5: revoke, expire, disable, change passwords --------------------------------------------


def test_a_revoked_token_is_refused_at_once(client: TestClient, cli: CliRunnerOn, requester: Actor) -> None:
    created = cli("tokens", "create", "rita", "--name", "nightly export", "--expires", "90d")
    assert created.exit_code == 0, created.output
    second = created.output.strip()
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {second}"}).status_code == 200
    listed = cli("tokens", "list", "rita").output
    row = next(line for line in listed.splitlines() if "nightly export" in line)
    expires = (utcnow() + timedelta(days=90)).strftime("%Y-%m-%d")
    assert second[:10] in row and expires in row and row.endswith("active")
    assert second not in listed  # only prefixes, never tokens

    revoked = cli("tokens", "revoke", second[:10])
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    refused = client.get("/api/v1/me", headers={"Authorization": f"Bearer {second}"})
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    assert client.get("/api/v1/me", headers=requester.headers).status_code == 200  # the other token still works
    assert next(line for line in cli("tokens", "list").output.splitlines() if second[:10] in line).endswith("revoked")

    unknown = cli("tokens", "revoke", "flt_nope00")
    assert unknown.exit_code == 1 and "no API token has id or prefix 'flt_nope00'" in unknown.output
    bad = cli("tokens", "create", "rita", "--expires", "soon")
    assert bad.exit_code == 2 and "'soon' is not a duration" in bad.output


def test_an_expired_token_is_refused(client: TestClient, system: System, cli: CliRunnerOn, requester: Actor) -> None:
    with system.database.transaction() as session:
        token = users.create_token(session=session, username="rita", expires_at=utcnow() + timedelta(hours=1))
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    with system.database.transaction() as session:
        stored = session.scalars(select(ApiToken).where(ApiToken.prefix == token[:10])).one()
        stored.expires_at = utcnow() - timedelta(seconds=1)
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    assert next(line for line in cli("tokens", "list").output.splitlines() if token[:10] in line).endswith("expired")


def test_disabling_a_user_ends_their_sessions_and_tokens_at_once(
    system: System, client: TestClient, cli: CliRunnerOn, requester: Actor
) -> None:
    login(client, "rita")
    assert client.get("/", follow_redirects=False).status_code == 200
    copied = client.cookies.get("fastlims_session")
    disabled = cli("users", "disable", "rita")
    assert disabled.exit_code == 0 and "disabled" in disabled.output
    assert client.get("/", follow_redirects=False).status_code == 303  # the open page session is over
    assert client.get("/api/v1/me", headers=requester.headers).status_code == 401
    assert post_login(client, "rita", PASSWORD).status_code == 401  # type: ignore[attr-defined]
    assert "rita\trequester\tdisabled" in cli("users", "list").output

    assert cli("users", "enable", "rita").exit_code == 0
    assert client.get("/api/v1/me", headers=requester.headers).status_code == 200
    with new_page_client(system) as replay:  # a session from before the disable stays over
        replay.cookies.set("fastlims_session", copied or "")
        assert replay.get("/", follow_redirects=False).status_code == 303
    login(client, "rita")
    assert client.get("/", follow_redirects=False).status_code == 200
    assert cli("users", "disable", "ghost").exit_code == 1


def test_passwd_sets_a_password_by_the_policy_and_ends_sessions(
    client: TestClient, cli: CliRunnerOn, requester: Actor
) -> None:
    login(client, "rita")
    own_name = cli("users", "passwd", "rita", "--password-stdin", input="rita-rules-the-lab\n")
    assert own_name.exit_code == 1 and "own name" in own_name.output
    demo = cli("users", "passwd", "rita", "--password-stdin", input=f"{DEMO_PASSWORD}\n")
    assert demo.exit_code == 1 and "demo password" in demo.output
    assert client.get("/", follow_redirects=False).status_code == 200  # refused changes change nothing

    changed = cli("users", "passwd", "rita", "--password-stdin", input=f"{NEW_PASSWORD}\n")
    assert changed.exit_code == 0, changed.output
    assert client.get("/", follow_redirects=False).status_code == 303
    assert post_login(client, "rita", PASSWORD).status_code == 401  # type: ignore[attr-defined]
    assert post_login(client, "rita", NEW_PASSWORD).status_code == 303  # type: ignore[attr-defined]
    generated = cli("users", "passwd", "rita")
    password = re.search(r"one-time password \(shown only now\): (\S+)", generated.output)
    assert generated.exit_code == 0 and password
    assert post_login(client, "rita", password.group(1)).status_code == 303  # type: ignore[attr-defined]


def test_the_password_change_page(system: System, client: TestClient, requester: Actor) -> None:
    login(client, "rita")
    with new_page_client(system) as elsewhere:
        login(elsewhere, "rita")

        def change(current: str, new: str, confirm: str | None = None) -> object:
            token = csrf_from(client, "/account/password")
            data = {"current": current, "new": new, "confirm": new if confirm is None else confirm, "csrf_token": token}
            return client.post("/account/password", data=data, follow_redirects=False)

        wrong = change("not-my-password", NEW_PASSWORD)
        assert wrong.status_code == 403 and "current password is wrong" in wrong.text  # type: ignore[attr-defined]
        differ = change(PASSWORD, NEW_PASSWORD, "something-else-entirely")
        assert differ.status_code == 422 and "differ" in differ.text  # type: ignore[attr-defined]
        demo = change(PASSWORD, DEMO_PASSWORD)
        assert demo.status_code == 422 and "demo password" in demo.text  # type: ignore[attr-defined]
        name = change(PASSWORD, "Rita-2026-secret")
        assert name.status_code == 422 and "own name" in name.text  # type: ignore[attr-defined]
        assert elsewhere.get("/", follow_redirects=False).status_code == 200

        done = change(PASSWORD, NEW_PASSWORD)
        assert done.status_code == 303  # type: ignore[attr-defined]
        assert "Password changed" in client.get(done.headers["location"]).text  # type: ignore[attr-defined]
        assert client.get("/", follow_redirects=False).status_code == 200  # this session goes on
        assert elsewhere.get("/", follow_redirects=False).status_code == 303  # every other one ended
    assert client.post("/account/password", data={"current": "x", "new": "y", "confirm": "y"}).status_code == 403


# --- item 7: guessing ------------------------------------------------------------------------------


def test_the_eleventh_wrong_password_is_refused_even_if_correct(
    client: TestClient, requester: Actor, other_requester: Actor
) -> None:
    for attempt in range(10):
        assert post_login(client, "rita", f"wrong-{attempt}").status_code == 401  # type: ignore[attr-defined]
    locked = post_login(client, "rita", PASSWORD)
    assert locked.status_code == 429  # type: ignore[attr-defined]
    assert 0 < int(locked.headers["retry-after"]) <= 900  # type: ignore[attr-defined]
    assert "Too many failed logins" in locked.text and "15 more minutes" in locked.text  # type: ignore[attr-defined]
    assert client.get("/", follow_redirects=False).status_code == 303  # not logged in
    assert post_login(client, "otto", PASSWORD).status_code == 303  # another account is not locked  # type: ignore[attr-defined]


def test_an_address_guessing_across_accounts_is_locked(system: System, client: TestClient, requester: Actor) -> None:
    system.login_throttle = LoginThrottle(ThrottlePolicy(max_failures=10, max_failures_per_address=5))
    for index in range(5):
        assert post_login(client, f"user{index}", "guess-guess-guess").status_code == 401  # type: ignore[attr-defined]
    assert post_login(client, "rita", PASSWORD).status_code == 429  # type: ignore[attr-defined]


def test_argon2_runs_outside_the_event_loop(
    client: TestClient, requester: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_loop: list[bool] = []
    real = users.verify_password

    def recording(password_hash: str, password: str) -> bool:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return real(password_hash, password)

    monkeypatch.setattr(users, "verify_password", recording)
    login(client, "rita")
    token = csrf_from(client, "/account/password")
    client.post(
        "/account/password",
        data={"current": PASSWORD, "new": NEW_PASSWORD, "confirm": NEW_PASSWORD, "csrf_token": token},
    )
    assert on_loop == [False, False]


# --- item 6: session lifetimes and cookies ---------------------------------------------------------


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def test_sessions_have_an_absolute_lifetime_as_well_as_an_idle_one(
    system: System, client: TestClient, requester: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(web_deps._now())
    monkeypatch.setattr(web_deps, "_now", clock)
    idle, absolute = system.settings.session_max_age_s, system.settings.session_absolute_s
    assert (idle, absolute) == (8 * 3600, 24 * 3600)
    login(client, "rita")
    for _ in range(3):  # active every 7 hours: never idle for 8
        clock.now += 7 * 3600
        assert client.get("/", follow_redirects=False).status_code == 200
    clock.now += 3 * 3600 + 1  # 24 h and a second after the login
    ended = client.get("/", follow_redirects=False)
    assert ended.status_code == 303 and ended.headers["location"] == "/login?next=/"

    login(client, "rita")
    clock.now += idle + 1
    assert client.get("/", follow_redirects=False).status_code == 303


def session_cookie(response: object) -> str:
    cookies = [v for k, v in response.headers.multi_items() if k == "set-cookie"]  # type: ignore[attr-defined]
    return next(c for c in cookies if c.startswith("fastlims_session="))


def test_cookies_are_secure_over_https_or_when_set(system: System, requester: Actor) -> None:
    from fastlims.web.app import create_app

    app = create_app(system)
    for base, secure in (("https://testserver", True), ("http://testserver", False)):
        with TestClient(app, base_url=base) as browser:
            cookie = session_cookie(post_login(browser, "rita", PASSWORD))
            assert ("; secure" in cookie.lower()) is secure, (base, cookie)
    system.settings.secure_cookies = True
    with TestClient(create_app(system)) as browser:
        # Over plain HTTP too (a TLS proxy in front that does not say so); the form's session
        # cookie is then not sent back over HTTP, so only the cookie itself is checked here.
        assert "; secure" in session_cookie(browser.get("/login")).lower()


# --- the password policy and /metrics --------------------------------------------------------------


def test_new_users_get_the_password_policy(client: TestClient, admin: Actor) -> None:
    def create(username: str, password: str) -> object:
        body = {"username": username, "role": "requester", "password": password, "display_name": "Nina Berg"}
        return client.post("/api/v1/users", headers=admin.headers, json=body)

    demo = create("nina", DEMO_PASSWORD)
    assert demo.status_code == 422 and "demo password" in demo.text  # type: ignore[attr-defined]
    name = create("nina", "nina-password-1")
    assert name.status_code == 422 and "own name" in name.text  # type: ignore[attr-defined]
    assert create("nina", "Berg-and-valley-9").status_code == 422  # type: ignore[attr-defined]
    assert create("nina", "quiet-harbour-lights").status_code == 201  # type: ignore[attr-defined]


def test_metrics_need_a_token_or_a_setting(
    system: System, client: TestClient, requester: Actor, manager: Actor
) -> None:
    from pydantic import SecretStr

    anonymous = client.get("/metrics")
    assert anonymous.status_code == 401 and "FASTLIMS_METRICS_TOKEN" in anonymous.json()["detail"]
    assert client.get("/metrics", headers=requester.headers).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-me-please"}).status_code == 401
    assert "fastlims_http_requests_total" in client.get("/metrics", headers=manager.headers).text
    system.settings.metrics_token = SecretStr("scrape-me-please")
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-me-please"}).status_code == 200
    system.settings.metrics_public = True
    assert client.get("/metrics").status_code == 200
