"""The web UI in a real headless Chromium against a real engine (``aion serve --ui``) with real runs: what each
page shows, a signal sent from the page completing its workflow, and a SIGKILLed workflow process seen restarted
on the live tree. Screenshots of each page go to the test's tmp dir."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

import aion
from tests.ui.conftest import TOKEN, UIProcess

pytestmark = pytest.mark.timeout(240)


def until(driver: Any, condition: Any, what: str, timeout: float = 30.0) -> Any:
    """Wait for ``condition(driver)`` to be truthy (stale elements are looked up again)."""

    def checked(d: Any) -> Any:
        try:
            return condition(d)
        except WebDriverException as exc:
            # Chromium's words for an element the page re-rendered away, when it is not reported as stale.
            if "does not belong to the document" in str(exc):
                return False
            raise

    return WebDriverWait(
        driver, timeout, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException, IndexError)
    ).until(checked, message=what)


def rows(driver: Any, table: str) -> list[list[str]]:
    """The cells' text of ``#table``'s body, read in one script: the page re-renders its tables while it polls,
    and elements looked up one by one can be gone from the document between two lookups."""
    script = (
        "return Array.from(document.querySelectorAll(arguments[0])).map("
        "row => Array.from(row.querySelectorAll('td')).map(cell => cell.innerText.trim()))"
    )
    result: list[list[str]] = driver.execute_script(script, f"#{table} tbody tr")
    return result


def open_with_token(driver: Any, ui: UIProcess, path: str = "/") -> None:
    """Open a page the way a user opens the printed URL: ``?token=`` once, kept in a cookie."""
    driver.get(f"{ui.url}{path}?token={TOKEN}")
    until(driver, lambda d: "token=" not in d.current_url, "the token dropped from the URL")


def start_runs(client: aion.Client) -> None:
    client.start_workflow("greet", "ann", workflow_id="greet-1").result(timeout=60)
    failed = client.start_workflow("raises", "boom at step 3", workflow_id="raises-1")
    with pytest.raises(aion.WorkflowFailedError):
        failed.result(timeout=60)
    client.start_workflow("waiter", workflow_id="waiter/1")


def test_workflows_page_lists_filters_counts_and_follows_a_status(
    engine_ui: UIProcess, browser: Any, screenshots: Path
) -> None:
    client = aion.Client(engine_ui.url, token=TOKEN)
    start_runs(client)
    open_with_token(browser, engine_ui)
    table = rows(browser, "workflows")
    assert {row[0]: row[2] for row in table} == {"greet-1": "completed", "raises-1": "failed", "waiter/1": "running"}
    assert all(row[5] == "1" for row in table)  # the version column
    assert browser.find_element(By.ID, "count-total").text == "3"
    browser.save_screenshot(str(screenshots / "workflows.png"))

    # Pages: two runs, then the next page holds the third.
    browser.get(f"{engine_ui.url}/?page_size=2")
    first_page = [row[0] for row in rows(browser, "workflows")]
    browser.find_element(By.ID, "next-page").click()
    until(browser, lambda d: "page_token=" in d.current_url, "the next page")
    second_page = [row[0] for row in rows(browser, "workflows")]
    assert len(first_page) == 2 and len(second_page) == 1
    assert sorted(first_page + second_page) == ["greet-1", "raises-1", "waiter/1"]
    browser.get(engine_ui.url + "/")

    # A status that changes is shown without a reload (the marker set on this page survives).
    browser.execute_script("window.__still_this_page = true")
    client.get_workflow("waiter/1").signal("go", {"ok": True})
    until(
        browser,
        lambda d: rows(d, "workflows") and {r[0]: r[2] for r in rows(d, "workflows")}["waiter/1"] == "completed",
        "the waiter's status updating in place",
    )
    assert browser.execute_script("return window.__still_this_page") is True
    until(
        browser, lambda d: d.find_element(By.CSS_SELECTOR, '#counts [data-status="completed"] b').text == "2", "counts"
    )

    # Filtered by status (the form), then by the query language.
    Select(browser.find_element(By.ID, "filter-status")).select_by_value("failed")
    browser.find_element(By.ID, "filter-apply").click()
    until(browser, lambda d: "status=failed" in d.current_url, "the filtered page")
    assert [row[0] for row in rows(browser, "workflows")] == ["raises-1"]
    browser.save_screenshot(str(screenshots / "workflows-failed.png"))
    browser.get(f"{engine_ui.url}/?query=" + quote("WorkflowType = 'greet'"))
    assert [row[0] for row in rows(browser, "workflows")] == ["greet-1"]
    assert browser.find_element(By.ID, "count-total").text == "1"


def test_workflow_page_shows_a_failure_and_the_history_in_order(
    engine_ui: UIProcess, browser: Any, screenshots: Path
) -> None:
    client = aion.Client(engine_ui.url, token=TOKEN)
    start_runs(client)
    open_with_token(browser, engine_ui, "/workflows/raises-1")
    assert browser.find_element(By.ID, "failure").text == "RuntimeError: boom at step 3"
    assert browser.find_element(By.ID, "status").text == "failed"
    history = rows(browser, "history")
    seqs = [int(row[0]) for row in history]
    assert seqs == sorted(seqs) and seqs[0] == 1
    types = [row[2] for row in history]
    assert types[0] == "WorkflowStarted" and types[-1] == "WorkflowFailed"
    assert [event["type"] for event in client.get_workflow("raises-1").history()] == types
    # The payload preview expands to the whole event.
    last = browser.find_elements(By.CSS_SELECTOR, "#history tbody tr")[-1]
    last.find_element(By.TAG_NAME, "summary").click()
    assert "boom at step 3" in last.find_element(By.TAG_NAME, "pre").text
    browser.save_screenshot(str(screenshots / "workflow-failed.png"))

    # A run retrying an activity shows it pending, with its attempt and last failure.
    client.start_workflow("retrying", workflow_id="retrying-1")
    browser.get(f"{engine_ui.url}/workflows/retrying-1")

    def attempt_shown(driver: Any) -> bool:
        driver.refresh()
        table = rows(driver, "activities") if driver.find_elements(By.CSS_SELECTOR, "table.activities") else []
        return bool(table) and int(table[0][3]) >= 2 and "ValueError: no luck with x" in table[0][5]

    until(browser, attempt_shown, "the pending activity with its attempt and last failure")
    browser.save_screenshot(str(screenshots / "workflow-retrying.png"))
    client.get_workflow("retrying-1").terminate("enough")


def test_a_signal_sent_from_the_page_completes_the_workflow(
    engine_ui: UIProcess, browser: Any, screenshots: Path
) -> None:
    client = aion.Client(engine_ui.url, token=TOKEN)
    handle = client.start_workflow("waiter", workflow_id="waiter/1")
    open_with_token(browser, engine_ui, "/workflows/" + quote("waiter/1", safe=""))
    until(browser, lambda d: "signal 'go'" in d.find_element(By.ID, "waiting-on").text, "the wait named")
    browser.find_element(By.ID, "signal-name").send_keys("go")
    browser.find_element(By.ID, "signal-payload").send_keys('{"approved_by": "ann"}')
    browser.save_screenshot(str(screenshots / "workflow-waiting.png"))
    browser.find_element(By.ID, "signal-send").click()
    alert = until(browser, lambda d: d.switch_to.alert, "the confirmation")
    assert "Send signal 'go'" in alert.text
    alert.accept()
    until(browser, lambda d: d.find_element(By.ID, "status").text == "completed", "the workflow completing")
    until(browser, lambda d: '"approved_by": "ann"' in d.find_element(By.ID, "result").text, "the result shown")
    until(browser, lambda d: rows(d, "history")[-1][2] == "WorkflowCompleted", "the history followed")
    assert handle.result(timeout=30) == {"approved_by": "ann"}
    browser.save_screenshot(str(screenshots / "workflow-completed.png"))

    # An action refused by the engine shows its error code (the run is closed).
    browser.find_element(By.ID, "action-cancel").click()
    until(browser, lambda d: d.switch_to.alert, "the confirmation").accept()
    until(browser, lambda d: "took_effect" in d.find_element(By.ID, "message").text, "the answer shown")


def _workflow_row(driver: Any, workflow_id: str) -> dict[str, str] | None:
    for row in driver.find_elements(By.CSS_SELECTOR, "#tree tbody tr"):
        cells = [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        if len(cells) == 10 and cells[3] == workflow_id and cells[1] == "process":
            return {"pid": cells[2], "restarts": cells[5], "last_exit": cells[6]}
    return None


def test_the_tree_shows_a_sigkill_and_the_restart_live(engine_ui: UIProcess, browser: Any, screenshots: Path) -> None:
    client = aion.Client(engine_ui.url, token=TOKEN)
    client.start_workflow("waiter", workflow_id="victim")
    open_with_token(browser, engine_ui, "/tree")
    before = until(browser, lambda d: _workflow_row(d, "victim"), "the workflow process on the tree")
    browser.save_screenshot(str(screenshots / "tree.png"))
    browser.execute_script("window.__still_this_page = true")
    os.kill(int(before["pid"]), signal.SIGKILL)
    after = until(
        browser,
        lambda d: (
            (row := _workflow_row(d, "victim")) and row["pid"] != before["pid"] and row["restarts"] != "0" and row
        ),
        "the restart on the live tree",
    )
    assert int(after["restarts"]) >= 1 and after["last_exit"] in ("SIGKILL", "killed")
    assert browser.execute_script("return window.__still_this_page") is True  # streamed, not reloaded
    browser.save_screenshot(str(screenshots / "tree-restarted.png"))
    client.get_workflow("victim").signal("go", 1)
    assert client.get_workflow("victim").result(timeout=60) == 1


def test_schedules_page_lists_and_triggers(engine_ui: UIProcess, browser: Any, screenshots: Path) -> None:
    client = aion.Client(engine_ui.url, token=TOKEN)
    client.request(
        "POST",
        "/schedules",
        {"schedule_id": "hourly-greet", "workflow_type": "greet", "args": ["sched"], "spec": {"interval": 3600}},
    )
    open_with_token(browser, engine_ui, "/schedules")
    table = rows(browser, "schedules")
    assert table[0][0] == "hourly-greet" and "every 3600" in table[0][2] and table[0][3] == "active"
    assert table[0][4]  # the next fire times
    browser.find_element(By.CSS_SELECTOR, 'button.schedule-action[data-action="trigger"]').click()
    until(browser, lambda d: d.switch_to.alert, "the confirmation").accept()
    until(browser, lambda d: rows(d, "schedules") and "hourly-greet-" in rows(d, "schedules")[0][5], "a recent action")
    browser.find_element(By.CSS_SELECTOR, 'button.schedule-action[data-action="pause"]').click()
    until(browser, lambda d: d.switch_to.alert, "the confirmation").accept()
    until(browser, lambda d: rows(d, "schedules")[0][3].startswith("paused"), "the schedule paused")
    browser.save_screenshot(str(screenshots / "schedules.png"))
