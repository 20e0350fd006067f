"""The queue dashboard in a real browser against a real replica, real bots and a real webhook
receiver: what the page shows must match what the API and the receiver saw."""

from __future__ import annotations

import re
import shutil

import pytest
from playwright.sync_api import expect

from botsys.states import TERMINAL, JobState
from tests.browser.helpers import docs_shots_dir, invoke, wait_job
from tests.support.procs import http, wait_for, write_config
from tests.support.redis_server import free_port

pytestmark = pytest.mark.browser


def open_dashboard(page, replica, fragment: str = ""):
    page.goto(f"{replica.url}/admin/queues{fragment}")
    page.wait_for_selector("body[data-ready='1']")


def count(page, bot_type: str, key: str):
    return page.locator(f'#queues tr[data-type="{bot_type}"] td[data-key="{key}"]')


def test_overview_counts_match_a_known_set_of_jobs_and_refresh_live(cluster, page, shots):
    replica = cluster.add_replica()
    ids = [invoke(replica, botType="python", bot="hello") for _ in range(3)]
    ids.append(invoke(replica, botType="python", bot="simulate", payload={"failureRate": 1}))
    states = [wait_job(replica, i)["state"] for i in ids]
    assert states == ["succeeded"] * 3 + ["failed"]

    open_dashboard(page, replica)
    # columns and the state filter are built from the server's enums (states.js)
    heads = page.locator("#queues thead th").all_inner_texts()
    assert heads[4:-1] == [s.replace("_", " ").capitalize() for s in TERMINAL]
    options = page.locator("#f-state option").evaluate_all("os => os.map((o) => o.value)")
    assert options == ["", *JobState]
    expect(count(page, "python", "succeeded")).to_have_text("3")
    expect(count(page, "python", "failed")).to_have_text("1")
    for key in ("waiting", "delayed", "timed_out", "cancelled"):
        expect(count(page, "python", key)).to_have_text("0")
    expect(count(page, "python", "running")).to_have_text("0 / 5")
    expect(count(page, "node", "succeeded")).to_have_text("0")
    expect(page.locator("#job-list tbody tr")).to_have_count(4)
    page.screenshot(path=shots / "overview.png", full_page=True)

    # no reload: the page polls, so a new job shows up by itself
    wait_job(replica, invoke(replica, botType="python", bot="hello"))
    expect(count(page, "python", "succeeded")).to_have_text("4", timeout=5_000)
    expect(page.locator("#job-list tbody tr")).to_have_count(5)

    # a failed count is a link to those jobs
    count(page, "python", "failed").locator("a").click()
    expect(page.locator("#f-state")).to_have_value("failed")
    expect(page.locator("#job-list tbody tr")).to_have_count(1)
    expect(page.locator("#job-list tbody tr")).to_contain_text(ids[3])


def test_search_by_payload_text_then_detail_shows_result_and_every_webhook_attempt(
    cluster, mock_webhook, page, shots
):
    replica = cluster.add_replica()
    hook = f"{mock_webhook.url}/hook"
    dead_hook = f"http://127.0.0.1:{free_port()}/nobody-listens"
    wanted = invoke(
        replica, botType="python", bot="hello", payload={"customer": "Needle-7f3a"}, webhookUrl=hook
    )
    for n in range(3):
        invoke(replica, botType="python", bot="hello", payload={"customer": f"hay-{n}"})
    failing = invoke(
        replica,
        botType="python",
        bot="simulate",
        payload={"failureRate": 1},
        webhookUrl=dead_hook,
        attempts=1,
    )
    node = invoke(replica, botType="node", payload={"durationMs": 100, "failureRate": 0})
    running = invoke(replica, botType="node", payload={"durationMs": 30_000, "failureRate": 0})
    done = wait_job(replica, wanted, lambda j: (j["webhook"] or {}).get("state") == "delivered")
    wait_job(replica, node)
    wait_job(replica, running, lambda j: j["state"] == "running")
    wait_job(replica, failing, lambda j: (j["webhook"] or {}).get("attempts", 0) >= 1)
    # the receiver really got it
    _, got, _ = http("GET", f"{mock_webhook.url}/webhooks?limit=50")
    assert any(w["body"]["jobId"] == wanted for w in got["webhooks"]), got

    open_dashboard(page, replica)
    expect(count(page, "node", "running")).to_have_text("1 / 10")
    take_docs_shot(page, "dashboard.png")

    page.fill("#f-q", "needle-7F3A")  # case-insensitive, in the payload
    rows = page.locator("#job-list tbody tr")
    expect(rows).to_have_count(1)  # 7 jobs before the search
    expect(rows.first).to_contain_text(wanted)
    page.screenshot(path=shots / "search.png")

    rows.first.click()
    detail = page.locator("#detail")
    expect(detail.locator("#d-title")).to_have_text(wanted)
    expect(detail.locator(".d-state .badge")).to_have_text("succeeded")
    expect(detail.locator("#d-payload")).to_contain_text('"customer": "Needle-7f3a"')
    expect(detail.locator("#d-result")).to_contain_text(f'"jobId": "{wanted}"')
    expect(detail.locator(".timeline")).to_contain_text(done["finishedAt"])
    delivery = detail.locator(".delivery")
    expect(delivery).to_have_count(1)
    expect(delivery.locator(".url")).to_have_text(hook)
    expect(delivery.locator(".delivery-head .badge")).to_have_text("delivered")
    expect(delivery.locator("tbody tr")).to_have_count(1)
    expect(delivery.locator("tbody td.status")).to_have_text("200")
    scroll_detail_to_end(page)
    page.screenshot(path=shots / "detail.png")
    take_docs_shot(page, "dashboard-job.png")

    # redeliver from the page: a second attempt, same delivery, and the receiver gets it again
    delivery.locator("button.redeliver").click()
    expect(delivery.locator("tbody tr")).to_have_count(2)
    expect(delivery.locator("tbody td.status").nth(1)).to_have_text("200")
    _, got, _ = http("GET", f"{mock_webhook.url}/webhooks?limit=50")
    assert sum(w["body"]["jobId"] == wanted for w in got["webhooks"]) == 2

    # search by a piece of the job id; the failed job's detail shows the error and the
    # webhook attempt that could not connect
    page.fill("#f-q", failing[-10:])
    expect(rows.first).to_contain_text(failing)
    expect(rows).to_have_count(1)
    rows.first.click()
    expect(detail.locator("#d-title")).to_have_text(failing)
    expect(detail.locator("#d-error")).to_contain_text("Simulated python bot execution error")
    expect(detail.locator("#retry-job")).to_be_visible()
    first_attempt = detail.locator(".delivery tbody tr").first
    expect(first_attempt.locator("td.status")).to_have_text("–")
    expect(first_attempt.locator("td.err")).not_to_be_empty()
    scroll_detail_to_end(page)
    page.screenshot(path=shots / "detail-failed.png")

    http("DELETE", f"{replica.url}/job/{running}")  # no bot left for the drain to wait on


def scroll_detail_to_end(page) -> None:
    """The drawer scrolls on its own; bring the webhook attempts into the screenshot."""
    page.eval_on_selector("#detail", "d => { d.scrollTop = d.scrollHeight; }")


def take_docs_shot(page, name: str) -> None:
    out = docs_shots_dir()
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=out / f"{name}.tmp.png")
        shutil.move(out / f"{name}.tmp.png", out / name)


def test_cancel_a_running_job_from_the_page_kills_the_bot(cluster, page, shots):
    replica = cluster.add_replica()
    job_id = invoke(
        replica, botType="python", bot="simulate", payload={"durationMs": 60_000, "failureRate": 0}
    )
    wait_job(replica, job_id, lambda j: j["state"] == "running")
    bot_pids = wait_for(replica.attempts, 10, what="the bot process")

    open_dashboard(page, replica, f"#job={job_id}")  # the detail opens from the URL
    detail = page.locator("#detail")
    expect(detail.locator(".d-state .badge")).to_have_text("running")
    expect(detail.locator("#d-logs")).to_contain_text("python simulate: 60000 ms")
    page.once("dialog", lambda d: d.accept())
    detail.locator("#cancel-job").click()

    assert wait_job(replica, job_id, timeout=10)["state"] == "cancelled"
    expect(detail.locator(".d-state .badge")).to_have_text("cancelled")
    expect(detail.locator("#cancel-job")).to_have_count(0)
    expect(detail.locator("#retry-job")).to_have_count(0)  # its payload was freed at cancel
    wait_for(lambda: not set(bot_pids) & set(replica.attempts()), 10, what="the bot to exit")
    expect(count(page, "python", "cancelled")).to_have_text("1")
    page.screenshot(path=shots / "cancelled.png")


def test_pagination_follows_next_cursor_and_a_phone_needs_no_sideways_scroll(cluster, page):
    replica = cluster.add_replica()
    # paused: the jobs stay queued, so the page has 30 of them without running any bot
    http("PATCH", f"{replica.url}/queues/python", {"paused": True})
    ids = [invoke(replica, botType="python", bot="hello", payload={"n": n}) for n in range(30)]

    open_dashboard(page, replica)
    expect(page.locator('#queues tr[data-type="python"] th .badge')).to_have_text("paused")
    expect(count(page, "python", "waiting")).to_have_text("30")
    rows = page.locator("#job-list tbody tr")
    expect(rows).to_have_count(25)  # one page
    expect(rows.first).to_contain_text(ids[-1])  # newest first
    page.click("#more")
    expect(rows).to_have_count(30)
    expect(rows.last).to_contain_text(ids[0])
    expect(page.locator("#more")).to_be_hidden()

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    expect(count(page, "python", "waiting")).to_have_text("30")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_deliveries_view_lists_adhoc_and_job_deliveries_and_redelivers(
    cluster, mock_webhook, page, shots
):
    replica = cluster.add_replica()
    hook = f"{mock_webhook.url}/dlv-view"
    job = invoke(replica, botType="python", bot="hello", webhookUrl=hook)
    status, out, _ = http(
        "POST",
        replica.url + "/deliver",
        {"url": hook, "payload": {"order": 5}, "eventType": "order.paid"},
    )
    assert status == 202, out
    adhoc = out["deliveryId"]

    def delivered(did):
        return http("GET", f"{replica.url}/delivery/{did}")[1].get("state") == "delivered"

    wait_for(lambda: delivered(adhoc) and delivered(f"msg_{job}"), 30, what="both delivered")

    open_dashboard(page, replica)
    rows = page.locator("#delivery-list tbody tr")
    adhoc_row = page.locator(f'#delivery-list tr[data-delivery-id="{adhoc}"]')
    expect(adhoc_row).to_contain_text("ad hoc · order.paid")
    expect(adhoc_row.locator(".badge")).to_have_text("delivered")
    expect(adhoc_row.locator("td.status")).to_have_text("200")
    job_row = page.locator(f'#delivery-list tr[data-delivery-id="msg_{job}"]')
    expect(job_row).to_contain_text(job)
    page.screenshot(path=shots / "deliveries.png", full_page=True)

    page.select_option("#dlv-state", "dead")
    expect(page.locator("#deliveries-empty")).to_be_visible()
    page.select_option("#dlv-state", "delivered")
    expect(adhoc_row).to_be_visible()

    adhoc_row.locator("button.redeliver").click()
    wait_for(
        lambda: len(http("GET", f"{replica.url}/delivery/{adhoc}")[1]["history"]) == 2,
        30,
        what="the redelivery",
    )
    _, got, _ = http("GET", f"{mock_webhook.url}/webhooks?limit=100")
    assert sum(w["headers"].get("webhook-id") == adhoc for w in got["webhooks"]) == 2
    job_row.locator("a").click()  # a job's webhook opens the job
    expect(page.locator("#d-title")).to_have_text(job)
    assert rows.count() >= 2


def test_endpoints_panel_shows_subscriptions_a_disabled_badge_and_the_circuit(
    cluster, mock_webhook, page, shots
):
    # a short disable time and a small breaker window: a refused endpoint is disabled in ~1 s
    cluster.config = write_config(
        cluster.tmp / "endpoints.toml",
        "[webhooks]\nendpoint_disable_after_s = 1.0\nbreaker_window = 2\nbreaker_open_s = 0.3\n"
        "max_retries = 50\nretry_delay_ms = 50\nmax_delay_ms = 100\n",
    )
    replica = cluster.add_replica()

    def create(**body):
        status, out, _ = http("POST", replica.url + "/endpoints", body)
        assert status == 201, out
        return out["endpointId"]

    ok = create(url=f"{mock_webhook.url}/endpoints-ok", eventTypes=["job.succeeded"])
    down = create(url=f"http://127.0.0.1:{free_port()}/down", description="nobody listens")
    wait_job(replica, invoke(replica, botType="python", bot="hello"))

    def endpoint(eid):
        return http("GET", f"{replica.url}/endpoints/{eid}")[1]

    wait_for(lambda: endpoint(down)["disabled"], 30, what="the refused endpoint disabled")
    wait_for(lambda: endpoint(ok)["breaker"] == "closed", 30, what="a send to the healthy one")

    open_dashboard(page, replica)
    ok_row = page.locator(f'#endpoint-list tr[data-endpoint-id="{ok}"]')
    down_row = page.locator(f'#endpoint-list tr[data-endpoint-id="{down}"]')
    expect(page.locator("#endpoint-list tbody tr")).to_have_count(2)
    expect(ok_row.locator("td.url")).to_have_text(f"{mock_webhook.url}/endpoints-ok")
    expect(ok_row.locator("td.events")).to_have_text("job.succeeded")
    expect(ok_row.locator("td.state .badge")).to_have_text("active")
    expect(ok_row.locator("td.breaker .badge")).to_have_text("closed")
    expect(down_row.locator("td.state .badge")).to_have_text("disabled")
    reason = down_row.locator("td.state .badge").get_attribute("title")
    assert reason.startswith("no successful delivery since"), reason
    expect(down_row.locator("td.breaker .badge")).to_have_text(re.compile("open"))
    page.screenshot(path=shots / "endpoints.png", full_page=True)

    # re-enable from the page: the API says so and the badge follows without a reload
    down_row.locator("button.toggle").click()
    expect(down_row.locator("td.state .badge")).to_have_text("active", timeout=5_000)
    assert endpoint(down)["disabled"] is False
