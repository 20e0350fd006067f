"""The types & groups page in a real browser against a real replica: what the rule editor saves
is what the API then holds; refusals (422, 412) show in the form and change nothing."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import invoke
from tests.support.procs import http

pytestmark = pytest.mark.browser

GROUPS = "/admin/config/bot-groups"
TYPES = "/admin/config/bot-types"


def open_config(page, replica):
    page.on("dialog", lambda dialog: dialog.accept())  # the page confirms deletes
    page.goto(f"{replica.url}/admin/queues/config")
    page.wait_for_selector("body[data-ready='1']")


def group_of(replica, group_id):
    status, body, _ = http("GET", f"{replica.url}{GROUPS}/{group_id}")
    return body if status == 200 else None


def member_box(page, member):
    return page.locator(f'#g-members input[value="{member}"]')


def save_group(page):
    page.locator("#group-form button[type=submit]").click()


def test_create_edit_and_delete_a_group_with_the_rule_editor(cluster, page, shots):
    replica = cluster.add_replica()
    open_config(page, replica)
    expect(page.locator("#groups-empty")).to_be_visible()

    # a new group: two members, weighted 3:1
    page.locator("#group-new").click()
    page.fill("#group-form [name=groupId]", "routing")
    member_box(page, "python/hello").check()
    member_box(page, "node/hello").check()
    page.select_option("#g-rule", "PERCENTAGE_BASED")
    page.locator('#g-rule-editor input[data-member="python/hello"]').fill("3")
    save_group(page)
    expect(page.locator('#groups tr[data-group="routing"]')).to_contain_text("python/hello 3")
    saved = group_of(replica, "routing")
    assert saved["members"] == ["node/hello", "python/hello"]  # in the page's (GET /bots) order
    assert saved["rule"] == {
        "type": "PERCENTAGE_BASED",
        "weights": [{"member": "node/hello", "weight": 1}, {"member": "python/hello", "weight": 3}],
    }

    # edit: slots by time of day, one wrapping midnight
    page.locator('#groups tr[data-group="routing"] button.edit').click()
    page.select_option("#g-rule", "TIME_BASED")
    page.locator("#g-rule-editor .add-slot").click()
    slot = page.locator("#g-rule-editor .slot").first
    slot.locator(".member").select_option("node/hello")
    slot.locator(".start").fill("22:00")
    slot.locator(".end").fill("06:00")
    page.locator("#g-rule-editor select.default").select_option("python/hello")
    save_group(page)
    expect(page.locator('#groups tr[data-group="routing"]')).to_contain_text("22:00–06:00")
    saved = group_of(replica, "routing")
    assert saved["rule"] == {
        "type": "TIME_BASED",
        "slots": [{"member": "node/hello", "start": "22:00", "end": "06:00"}],
        "default": "python/hello",
    }
    page.screenshot(path=shots / "config.png", full_page=True)

    # an unsafe regex: 422 shown in the form, naming the field; the group is unchanged
    page.locator('#groups tr[data-group="routing"] button.edit').click()
    page.select_option("#g-rule", "PARAMETER_BASED")
    page.locator("#g-rule-editor .add-branch").click()
    branch = page.locator("#g-rule-editor .branch").first
    branch.locator(".member").select_option("node/hello")
    cond = branch.locator(".condition").first
    cond.locator(".field").fill("email")
    cond.locator(".operator").select_option("REGEX_MATCH")
    cond.locator(".value").fill("(a+)+$")
    save_group(page)
    error = page.locator("#group-form .form-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("rule.branches[0].conditions[0].value")
    assert group_of(replica, "routing")["version"] == saved["version"]
    page.screenshot(path=shots / "rule-editor.png", full_page=True)

    # fixed: IN a list (a JSON value) saves
    cond.locator(".operator").select_option("IN")
    cond.locator(".value").fill('["eu", "uk"]')
    cond.locator(".field").fill("region")
    save_group(page)
    expect(page.locator("#group-form")).to_be_hidden()
    rule = group_of(replica, "routing")["rule"]
    assert rule["branches"] == [
        {
            "member": "node/hello",
            "conditions": [{"field": "region", "operator": "IN", "value": ["eu", "uk"]}],
        }
    ]

    # the job routed through it shows its group in the queue dashboard
    job_id = invoke(replica, target="groupId:routing", params={"region": "uk"})
    page.goto(f"{replica.url}/admin/queues#job={job_id}")
    expect(page.locator("#d-body dl.meta")).to_contain_text(
        "routing · PARAMETER_BASED → node/hello"
    )

    # delete (confirmed): gone from the page and the API
    open_config(page, replica)
    page.locator('#groups tr[data-group="routing"] button.delete').click()
    expect(page.locator('#groups tr[data-group="routing"]')).to_have_count(0)
    assert group_of(replica, "routing") is None


def test_a_stale_edit_is_refused_and_says_so(cluster, page):
    replica = cluster.add_replica()
    body = {"groupId": "g", "members": ["python/hello"], "rule": {"type": "ROUND_ROBIN"}}
    assert http("POST", replica.url + GROUPS, body)[0] == 201
    open_config(page, replica)
    page.locator('#groups tr[data-group="g"] button.edit').click()
    # meanwhile someone else changes it
    changed = {**body, "members": ["python/hello", "node/hello"]}
    assert http("PUT", f"{replica.url}{GROUPS}/g", changed)[0] == 200
    page.fill("#group-form [name=description]", "mine")
    save_group(page)
    expect(page.locator("#group-form .form-error")).to_contain_text("changed since it was read")
    assert group_of(replica, "g")["members"] == ["python/hello", "node/hello"]


def test_types_page_against_the_types_api(cluster, page):
    """Create (with a cadence), then delete, a runtime type through the page."""
    replica = cluster.add_replica()
    open_config(page, replica)
    page.locator("#type-new").click()
    form = page.locator("#type-form")
    form.locator("[name=name]").fill("reports")
    form.locator("[name=runtime]").fill("python")
    form.locator("[name=limit]").fill("2")
    form.locator("[name=cadenceMax]").fill("5")
    form.locator("[name=cadenceIntervalS]").fill("2")
    form.locator("button[type=submit]").click()
    row = page.locator('#types tr[data-type="reports"]')
    expect(row).to_contain_text("5 / 2 s")
    status, view, _ = http("GET", f"{replica.url}{TYPES}/reports")
    assert status == 200 and view["limit"] == 2 and view["cadence"]["max"] == 5

    row.locator("button.edit").click()
    form.locator("[name=limit]").fill("3")
    form.locator("button[type=submit]").click()
    expect(page.locator("#type-form")).to_be_hidden()
    assert http("GET", f"{replica.url}{TYPES}/reports")[1]["limit"] == 3

    page.locator('#types tr[data-type="reports"] button.delete').click()
    expect(page.locator('#types tr[data-type="reports"]')).to_have_count(0)
    assert http("GET", f"{replica.url}{TYPES}/reports")[0] == 404
