"""The console in a real browser (Debian's Chromium driven by Playwright): sign in, read the
dashboard, open an account and see one chart segment per slice, record a deposit and see it
pending, cancel it, open a window report; every page fits a 390 px phone screen without
sideways scrolling; an analyst's liquidating policy change shows its plan and applies only
from there.

Playwright's own browser download is not used: the system Chromium is launched. Without
it the test skips with the reason, except where PIES_REQUIRE_BROWSER=1 (CI): there it fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time

import pytest

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _need_browser():
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reason = "the playwright package is not installed"
    else:
        reason = None if CHROMIUM else "no chromium on this machine (apt-get install chromium)"
    if reason:
        if os.environ.get("PIES_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " (PIES_REQUIRE_BROWSER=1)")
        pytest.skip(reason)


@pytest.fixture
def server(world):
    _need_browser()
    import uvicorn
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(world["client"].app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    t.join(timeout=10)


def test_an_operator_uses_the_console_in_a_browser(world, server, tmp_path):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 390, "height": 844})          # a phone
        page.goto(f"{server}/console/")
        assert page.url.endswith("/console/login")
        page.fill("#token", world["tokens"]["operator"])
        page.click("button[type=submit]")
        page.wait_for_url(f"{server}/console/")
        assert page.inner_text("#accounts-count") == "2"
        assert page.inner_text("#total-value") == "$1,000.00"
        page.click("text=Accounts")
        page.click("a[href='/console/accounts/alice']")
        slices = page.locator("#slices tbody tr").count()
        leaves = page.locator("svg.pie-chart path.segment.target").count()
        assert leaves == 3 and slices == 4              # VTI, Bonds, Bonds/BND, Bonds/TIP; 3 securities
        assert page.locator("svg.pie-chart path.segment.pie-band").count() == 1
        page.select_option("select[name=kind]", "deposit")
        page.fill("input[name=amount]", "1,250.50")
        page.click("button:has-text('Record')")
        assert "$1,250.50" in page.inner_text("[role=status]")
        assert "deposit" in page.inner_text("#pending") and "1,250.50" in page.inner_text("#pending")
        page.click("#pending >> text=Cancel")
        assert "canceled" in page.inner_text("[role=status]")
        assert "None." in page.inner_text("#pending")
        page.click("text=Windows")
        page.click("#windows a")
        assert "The ledger agrees with the broker." in page.inner_text("#agrees")
        page.screenshot(path=str(tmp_path / "report.png"))
        browser.close()
    assert world["led"].events(status="pending") == []


PAGES = ["/console/", "/console/accounts", "/console/accounts/alice", "/console/events", "/console/windows",
         "/console/windows/1", "/console/policies"]


def widest(page) -> int:
    return page.evaluate("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")


def test_every_page_fits_a_phone_and_a_liquidating_apply_is_confirmed(world, server, tmp_path):
    from playwright.sync_api import sync_playwright
    (tmp_path / "core.pie").write_text('pie "Core" { VTI 100% }\n')          # drops Bonds: alice's bonds are sold
    world["cli"]("deposit", "bob", "12345.67")                               # a pending event, thousands
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 390, "height": 844})
        page.goto(f"{server}/console/login")
        page.fill("#token", world["tokens"]["analyst"])
        page.click("button[type=submit]")
        page.wait_for_url(f"{server}/console/")
        widths = {}
        for path in PAGES:
            page.goto(server + path)
            widths[path] = widest(page)
            page.screenshot(path=str(tmp_path / f"390{path.replace('/', '_')}.png"), full_page=True)
        print("document widths at 390 px:", widths)
        assert all(w <= 390 for w in widths.values()), widths
        page.goto(f"{server}/console/events")
        assert "$12,345.67" in page.inner_text("#events") and "bob" in page.inner_text("#events")
        assert page.locator("#events time").count() == 1                    # a local time, not raw ISO
        page.goto(f"{server}/console/policies")
        assert page.locator("form[action='/console/policies/apply']").count() == 0   # no one-click apply
        page.click("text=Review the sales and apply")
        assert "/console/policies/confirm" in page.url
        assert "alice" in page.inner_text("#confirm-liquidations") and "Bonds/BND" in page.inner_text(
            "#confirm-liquidations")
        assert widest(page) <= 390
        page.screenshot(path=str(tmp_path / "390_confirm.png"), full_page=True)
        assert world["led"].events(status="pending")[-1][0].kind == "deposit"    # nothing applied yet
        page.click("#confirm-apply")
        page.wait_for_url(f"{server}/console/policies?*")
        assert "Applied version" in page.inner_text("[role=status]")
        browser.close()
    kinds = {e.kind for e, _ in world["led"].events(status="pending")}
    assert {"target_change", "liquidation"} <= kinds
