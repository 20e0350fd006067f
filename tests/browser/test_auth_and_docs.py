"""With API keys on, the dashboard asks for a key instead of breaking; admin actions ask for an
admin key. Swagger UI renders and its "Try it out" really queues a job. The index at / links
everything."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import invoke, wait_job
from tests.support.procs import http

pytestmark = pytest.mark.browser

USER_KEY = "user-key-5b1e0c"
ADMIN_KEY = "admin-key-93fa7d"


def enter_key(page, key: str) -> None:
    page.fill("#key-input", key)
    page.click("#key-form button[type=submit]")


def test_with_keys_the_page_prompts_for_a_key_then_works(cluster, page):
    replica = cluster.add_replica(BOTSYS_API_KEYS=USER_KEY, BOTSYS_ADMIN_KEYS=ADMIN_KEY)
    user = {"Authorization": f"Bearer {USER_KEY}"}
    job_id = invoke(replica, headers=user, botType="python", bot="hello")
    wait_job(replica, job_id, headers=user)

    page.goto(f"{replica.url}/admin/queues")
    dialog = page.locator("#key-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("needs an API key")

    enter_key(page, "not-a-key")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#key-reason")).to_contain_text("refused")

    enter_key(page, USER_KEY)
    expect(dialog).to_be_hidden()
    row = page.locator('#queues tr[data-type="python"]')
    expect(row.locator('td[data-key="succeeded"]')).to_have_text("1")
    expect(page.locator("#job-list tbody tr")).to_contain_text(job_id)
    expect(page.locator("#key-button")).to_have_text("API key ✓")
    # the Endpoints panel is for admins: a note, not the key prompt
    expect(page.locator("#endpoints-denied")).to_be_visible()

    # pausing needs an admin key: the 403 brings the prompt back, and the action runs after
    row.locator("button.pause").click()
    expect(dialog).to_be_visible()
    expect(dialog.locator("#key-reason")).to_contain_text("admin key")
    _, queue, _ = http("GET", f"{replica.url}/queues/python", headers=user)
    assert queue["paused"] is False

    enter_key(page, ADMIN_KEY)
    expect(dialog).to_be_hidden()
    expect(row.locator("button.pause")).to_have_text("Resume")
    expect(row.locator("th .badge")).to_have_text("paused")
    expect(page.locator("#endpoints-empty")).to_be_visible()  # the admin key sees the list
    expect(page.locator("#endpoints-denied")).to_be_hidden()
    _, queue, _ = http("GET", f"{replica.url}/queues/python", headers=user)
    assert queue["paused"] is True

    # the live limit, from the same row
    row.locator(".limit-input").fill("2")
    row.locator("button", has_text="Set").click()
    expect(row.locator('td[data-key="running"]')).to_have_text("0 / 2")
    _, queue, _ = http("GET", f"{replica.url}/queues/python", headers=user)
    assert queue["limit"] == 2

    # an API refusal shows the problem's detail and field errors, and changes nothing
    row.locator(".limit-input").fill("100001")
    row.locator("button", has_text="Set").click()
    toast = page.locator(".toast.error")
    expect(toast).to_contain_text("invalid limit")
    expect(toast).to_contain_text("less than or equal to 100000")
    _, queue, _ = http("GET", f"{replica.url}/queues/python", headers=user)
    assert queue["limit"] == 2


def test_swagger_ui_try_it_out_invoke_returns_202_and_links_the_dashboard(cluster, page):
    replica = cluster.add_replica()
    page.goto(f"{replica.url}/api-docs")
    expect(page.locator(".info a[href='/admin/queues']")).to_be_visible()

    op = page.locator(
        ".opblock-post", has=page.locator(".opblock-summary-path", has_text="/invoke")
    )
    op.locator(".opblock-summary").first.click()
    op.locator("button.try-out__btn").click()
    body = {"botType": "python", "bot": "hello", "payload": {"from": "swagger"}}
    op.locator("textarea.body-param__text").fill(json.dumps(body))
    op.locator("button.execute").click()

    status = op.locator(".live-responses-table .response .response-col_status").first
    expect(status).to_have_text("202")
    reply = json.loads(
        op.locator(".live-responses-table .response-col_description pre").first.inner_text()
    )
    assert reply["status"] == "queued"
    assert wait_job(replica, reply["jobId"])["payload"] == {"from": "swagger"}

    # the index: JSON for clients, a page of links for a browser
    _, index, _ = http("GET", f"{replica.url}/")
    assert index["links"]["dashboard"] == "/admin/queues"
    assert index["botTypes"] == ["python", "node", "java"]
    page.goto(f"{replica.url}/")
    page.click("a[href='/admin/queues']")
    page.wait_for_selector("body[data-ready='1']")
    succeeded = page.locator('#queues tr[data-type="python"] td[data-key="succeeded"]')
    expect(succeeded).to_have_text("1")
