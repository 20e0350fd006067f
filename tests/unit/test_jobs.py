"""Job ids, the retry schedule and the public view."""

from __future__ import annotations

from botsys.jobs import Job, bot_type_of, iso_ms, new_job_id


def test_job_ids_embed_the_type_and_sort_by_time():
    a = new_job_id("python", now_ms=1_000)
    b = new_job_id("python", now_ms=2_000)
    assert a < b and bot_type_of(a) == "python"
    assert bot_type_of("node-" + a.split("-")[1]) == "node"
    for bad in ("", "python", "python-../../etc", "PY-01JD0000000000000000000000", "python-01JD"):
        assert bot_type_of(bad) is None


def test_ids_made_in_one_millisecond_sort_in_the_order_they_were_made():
    ids = [new_job_id("python", now_ms=5_000) for _ in range(200)]
    assert ids == sorted(ids) and len(set(ids)) == 200
    assert all(i.split("-")[1][:10] == ids[0].split("-")[1][:10] for i in ids)  # the same ms


def test_view_has_the_documented_shape():
    job = Job(
        {
            "id": "python-01JD0000000000000000000000",
            "state": "succeeded",
            "botType": "python",
            "bot": "simulate",
            "priority": "3",
            "createdAt": "1700000000000",
            "result": "[1,2]",
            "payload": "{}",
            "webhookUrl": "http://x/",
            "webhookState": "delivered",
            "webhookAttempts": "2",
            "webhookLastStatus": "200",
        }
    )
    v = job.view()
    assert (
        v["result"] == [1, 2]
        and v["createdAt"] == iso_ms(1700000000000) == "2023-11-14T22:13:20.000Z"
    )
    assert v["webhook"] == {
        "url": "http://x/",
        "deliveryId": None,
        "state": "delivered",
        "attempts": 2,
        "lastStatus": 200,
        "deliveredAt": None,
    }
