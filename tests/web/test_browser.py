"""The dashboard in a real browser: Debian's chromium through chromium-driver (Selenium),
against ``alluse serve`` on a free loopback port over a short backtest's database. Open the
overview, filter the decisions, open one, read its explanation, press replay, see
"identical". Screenshots go to the test's tmp dir."""

from __future__ import annotations

import os
import shutil

import httpx
import pytest

pytestmark = pytest.mark.browser

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)


def _executables() -> tuple[str, str]:
    browser = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    reason = "Debian's chromium and chromium-driver are not installed (apt-get install -y chromium chromium-driver)"
    if os.environ.get("CI"):
        pytest.fail(reason)  # CI installs them (.ci/run): never pass with the browser left out
    pytest.skip(reason)


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = _executables()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    session = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    session.implicitly_wait(0)
    yield session
    session.quit()


def _wait(browser, condition, what: str, timeout: float = 30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout, poll_frequency=0.2).until(condition, message=what)


def test_review_a_decision_in_the_browser_and_replay_it(browser, server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    browser.get(server + "/")
    _wait(
        browser, EC.text_to_be_present_in_element((By.ID, "chain"), "intact"), "the verified chain"
    )
    accounts = browser.find_elements(By.CSS_SELECTOR, "#accounts tbody tr")
    assert {r.find_elements(By.TAG_NAME, "td")[0].text for r in accounts} == {"GEN", "REV", "COM"}
    browser.save_screenshot(str(tmp_path / "1-overview.png"))

    browser.find_element(By.ID, "nav-decisions").click()
    _wait(browser, EC.presence_of_element_located((By.ID, "filters")), "the decisions page")
    browser.find_element(By.NAME, "account").send_keys("GEN")
    browser.find_element(By.NAME, "rule").send_keys("mode.account_inherits_market")
    browser.find_element(By.ID, "apply").click()
    _wait(browser, EC.url_contains("rule=mode.account_inherits_market"), "the filtered list")
    rows = browser.find_elements(By.CSS_SELECTOR, "#decision-rows tbody tr[data-seq]")
    expected = httpx.get(
        f"{server}/api/decisions?account=GEN&rule=mode.account_inherits_market&limit=50"
    ).json()
    assert [int(r.get_attribute("data-seq")) for r in rows] == [d["seq"] for d in expected] != []
    browser.save_screenshot(str(tmp_path / "2-decisions-filtered.png"))

    quiet = next(r for r in rows if r.find_elements(By.TAG_NAME, "td")[7].text == "-")  # no action
    decision_id = quiet.find_element(By.CLASS_NAME, "decision-link").text
    quiet.find_element(By.CLASS_NAME, "decision-link").click()
    _wait(
        browser,
        EC.text_to_be_present_in_element((By.ID, "decision-id"), decision_id),
        "the decision page",
    )
    explanation = browser.find_element(By.ID, "explanation").text
    assert "mode.account_inherits_market" in explanation and "account.equity=" in explanation
    assert browser.find_element(By.ID, "hash").text.startswith("sha256:")

    browser.find_element(By.ID, "replay").click()
    _wait(
        browser,
        EC.text_to_be_present_in_element((By.ID, "replay-result"), "identical"),
        "the replay's verdict",
    )
    assert browser.find_element(By.ID, "replay-result").get_attribute("class") == "identical"
    browser.save_screenshot(str(tmp_path / "3-decision-replayed.png"))
    assert all(
        (tmp_path / n).stat().st_size > 10_000
        for n in ("1-overview.png", "2-decisions-filtered.png", "3-decision-replayed.png")
    )


def test_positions_alerts_and_reports_pages_render(browser, server, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(server + "/positions")
    positions = httpx.get(f"{server}/api/positions").json()
    rows = browser.find_elements(By.CSS_SELECTOR, "#positions tbody tr")
    assert len(rows) == len(positions) > 0
    sides = {r.find_elements(By.TAG_NAME, "td")[2].text for r in rows}
    assert sides <= {"long", "short"}
    browser.get(server + "/alerts")
    alerts = browser.find_elements(By.CSS_SELECTOR, "#alerts tbody tr")
    assert len(alerts) == len(httpx.get(f"{server}/api/alerts").json()) > 0
    browser.get(server + "/reports")
    assert browser.find_element(By.ID, "reports").is_displayed()
    browser.save_screenshot(str(tmp_path / "positions-alerts-reports.png"))
