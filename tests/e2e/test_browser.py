"""A person's path through the pages in a real headless Chromium against a real `fastlims up`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.services import free_port, missing

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PASSWORD = "browser-test-password"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def wait_until_healthy(url: str, process: subprocess.Popen[str], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"fastlims up exited early with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)  # polling a condition with a deadline, not a fixed wait
    raise AssertionError(f"{url}/healthz did not answer within {timeout_s} s")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("e2e-data")
    env = {
        **os.environ,
        "FASTLIMS_DATA_DIR": str(data),
        "FASTLIMS_TIMEZONE": "Europe/Berlin",
        # Every embedded service on a free port, so runs never collide with each other.
        "FASTLIMS_MQTT_PORT": str(free_port()),
        "FASTLIMS_SFTP_PORT": str(free_port()),
    }
    env.pop("FASTLIMS_DATABASE_URL", None)
    fastlims = [sys.executable, "-m", "fastlims.cli"]
    subprocess.run(
        [
            *fastlims,
            "users",
            "add",
            "eve",
            "--role",
            "requester",
            "--display-name",
            "Eve Engineer",
            "--password-stdin",
        ],
        input=PASSWORD + "\n",
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    port = free_port()
    process = subprocess.Popen(
        [*fastlims, "up", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if CHROMIUM is None:
        missing("Chromium (Debian package chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright (pip)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.mark.browser
def test_engineer_requests_a_test_through_the_pages(server: str, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page()
    page.goto(f"{server}/")
    assert "/login" in page.url
    page.fill("#username", "eve")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/")
    assert page.inner_text('[data-testid="stat-total"]') == "0"
    assert "Eve Engineer" in page.inner_text('[data-testid="current-user"]')

    page.click("text=New Request")
    page.wait_for_url(f"{server}/requests/new")
    all_tests = page.locator("#test_name option[value]:not([value=''])").count()
    assert all_tests == 0  # nothing chosen yet: the list waits for the filters

    page.select_option("#uut", "Gen3b - Cell")
    page.wait_for_function("document.querySelectorAll('#test_name option').length > 1")
    after_uut = page.locator("#test_name option:not([value=''])").count()
    page.select_option("#use_case", "Automotive")
    page.select_option("#standard", "IEC62660")
    page.wait_for_function(
        f"document.querySelectorAll('#test_name option:not([value=\"\"])').length < {after_uut}"
        " && !document.querySelector('.htmx-request')"
    )
    offered = page.eval_on_selector_all("#test_name option:not([value=''])", "els => els.map(e => e.value)")
    assert offered, "IEC 62660-1 offers performance tests for a Gen3b automotive cell"

    page.select_option("#test_name", offered[0])
    page.select_option("#bench", "Virtual")
    page.fill("#preferred_date", "2099-03-02T10:30")
    page.click('[data-testid="submit"]')
    page.wait_for_url(f"{server}/requests/TR-*")
    # Submitted, or already ModelRequested: the outbox relay may have announced it to the DT.
    assert page.inner_text('[data-testid="status"]') in ("Submitted", "ModelRequested")
    assert "2099-03-02 10:30" in page.inner_text("body")
    page.screenshot(path=str(tmp_path / "request-detail.png"), full_page=True)

    page.click("nav >> text=Dashboard")
    page.wait_for_url(f"{server}/")
    assert page.inner_text('[data-testid="stat-total"]') == "1"
    # Submitted, or already ModelRequested once the embedded broker took the request to the DT.
    in_flight = int(page.inner_text('[data-testid="stat-submitted"]')) + int(
        page.inner_text('[data-testid="stat-running"]')
    )
    assert in_flight == 1
    page.close()


@pytest.mark.browser
def test_form_errors_are_shown_next_to_the_fields(server: str, browser) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page()
    page.goto(f"{server}/login")
    page.fill("#username", "eve")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/")
    page.goto(f"{server}/requests/new")
    page.click('[data-testid="submit"]')
    assert "choose" in page.inner_text('[data-testid="error-uut"]').lower()
    page.select_option("#uut", "Gen3b - Cell")
    page.select_option("#use_case", "Automotive")
    page.select_option("#standard", "IEC62660")
    page.wait_for_function(
        "document.querySelectorAll('#test_name option').length > 1 && !document.querySelector('.htmx-request')"
    )
    page.select_option("#test_name", index=1)
    page.fill("#preferred_date", "2001-01-01T10:00")
    page.click('[data-testid="submit"]')
    assert "in the past" in page.inner_text('[data-testid="error-preferred_date"]')
    assert page.locator('[data-testid="error-uut"]').count() == 0
    page.close()
