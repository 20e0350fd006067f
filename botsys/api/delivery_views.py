"""Deliveries as the API shows them: the outbox's stored fields shaped into responses."""

from __future__ import annotations

from typing import Any

from .. import jsonsafe
from ..jobs import iso_ms
from ..states import DeliveryState
from ..store.outbox import StoredDelivery


def delivery_view(stored: StoredDelivery) -> dict[str, Any]:
    """GET /deliveries/{id}: the summary, the body sent and every attempt."""
    f, attempts = stored
    return {
        **delivery_summary(f),
        "body": _json_or_text(f.get("body")),
        "history": [{**a, "at": iso_ms(a.get("at"))} for a in attempts],
    }


def delivery_summary(f: dict[str, Any]) -> dict[str, Any]:
    """A delivery in GET /deliveries: no body (it holds the job's result) and no attempts."""
    state = f.get("state")
    return {
        "deliveryId": f["id"],
        "jobId": f.get("jobId") or None,  # None: an ad-hoc delivery (POST /deliver)
        "botType": f.get("botType") or None,
        "eventType": f.get("eventType") or None,
        "endpointId": f.get("endpoint") or None,  # a subscribed endpoint's delivery
        "url": f.get("url"),
        "state": state,
        "attempts": int(f.get("attempt", 0)),
        "maxAttempts": int(f.get("maxAttempts", 0)),
        "createdAt": iso_ms(f.get("createdAt")),
        "nextAttemptAt": iso_ms(f.get("nextAt")) if state == DeliveryState.PENDING else None,
        "finishedAt": iso_ms(f.get("finishedAt")),
        "lastStatus": int(last) if (last := f.get("lastStatus")) else None,
    }


def _json_or_text(raw: str | None) -> Any:
    """A stored body; one an older version stored with NaN in it is served as text."""
    if not raw:
        return None
    try:
        return jsonsafe.loads(raw)
    except ValueError:
        return raw
