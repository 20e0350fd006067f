"""Endpoints and their subscriptions (pure; the Redis side is botsys/endpoints.py).

An endpoint is a URL with its own signing secrets, the event types it subscribes to and an
optional bot-type filter. Every matching job event gets one delivery per endpoint, created by
the job's completion script (lib.lua's fan_out) from ``fan_out_context``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from botsys.webhooks.rotation import Keyring, RingSecret

JOB_EVENTS = ("job.succeeded", "job.failed", "job.cancelled", "job.timed_out")
ENDPOINT_DISABLED = "endpoint.disabled"
DELIVERY_DEAD = "delivery.dead"
EVENT_TYPES = (*JOB_EVENTS, ENDPOINT_DISABLED, DELIVERY_DEAD)


@dataclass(frozen=True)
class Endpoint:
    id: str  # ep_<ULID>
    url: str
    event_types: tuple[str, ...] = JOB_EVENTS
    bot_types: tuple[str, ...] = ()  # () = every bot type
    secrets: tuple[RingSecret, ...] = ()
    disabled: bool = False
    rate_limit: float = 0.0  # deliveries/s, all replicas together; 0: none
    description: str = ""
    created_at_ms: int = 0
    updated_at_ms: int = 0
    disabled_at_ms: int = 0  # 0: enabled, or disabled before this was recorded
    disabled_reason: str = ""

    def wants(self, bot_type: str) -> bool:
        return not self.disabled and (not self.bot_types or bot_type in self.bot_types)

    def keyring(self) -> Keyring:
        return Keyring(list(self.secrets))

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "url": self.url,
            "eventTypes": list(self.event_types),
            "botTypes": list(self.bot_types),
            "secrets": [s.to_json() for s in self.secrets],
            "disabled": self.disabled,
            "rateLimit": self.rate_limit,
            "description": self.description,
            "createdAt": self.created_at_ms,
            "updatedAt": self.updated_at_ms,
            "disabledAt": self.disabled_at_ms or None,
            "disabledReason": self.disabled_reason or None,
        }

    @classmethod
    def from_json(cls, d: dict) -> Endpoint:
        return cls(
            id=d["id"],
            url=d["url"],
            event_types=tuple(d.get("eventTypes") or JOB_EVENTS),
            bot_types=tuple(d.get("botTypes") or ()),
            secrets=tuple(RingSecret.from_json(s) for s in d.get("secrets") or ()),
            disabled=bool(d.get("disabled")),
            rate_limit=float(d.get("rateLimit") or 0),
            description=d.get("description") or "",
            created_at_ms=int(d.get("createdAt") or 0),
            updated_at_ms=int(d.get("updatedAt") or 0),
            disabled_at_ms=int(d.get("disabledAt") or 0),
            disabled_reason=d.get("disabledReason") or "",
        )

    def patched(self, changes: dict, now_ms: int) -> Endpoint:
        """The endpoint with the API's PATCH fields applied."""
        names = {
            "url": "url",
            "eventTypes": "event_types",
            "botTypes": "bot_types",
            "disabled": "disabled",
            "rateLimit": "rate_limit",
            "description": "description",
        }
        kw = {names[k]: tuple(v) if isinstance(v, list) else v for k, v in changes.items()}
        if kw.get("disabled") is False:
            kw |= {"disabled_at_ms": 0, "disabled_reason": ""}
        elif kw.get("disabled") and not self.disabled:
            kw |= {"disabled_at_ms": now_ms, "disabled_reason": "disabled through the API"}
        return replace(self, **kw, updated_at_ms=now_ms)

    def disabled_for(self, reason: str, now_ms: int) -> Endpoint:
        return replace(
            self, disabled=True, disabled_at_ms=now_ms, disabled_reason=reason, updated_at_ms=now_ms
        )


def fan_out_context(endpoints: list[Endpoint], bot_types: list[str]) -> dict[str, list[dict]]:
    """Per bot type, what lib.lua's fan_out needs: the enabled endpoints that want the type's
    events, with the events as a set (a JSON object) for one lookup per endpoint."""
    return {
        t: [
            {"id": e.id, "url": e.url, "events": dict.fromkeys(e.event_types, True)}
            for e in endpoints
            if e.wants(t) and e.event_types
        ]
        for t in bot_types
    }


def dead_letter_context(endpoints: list[Endpoint]) -> list[dict]:
    """The ad-hoc slot's: the enabled endpoints without a bot-type filter that subscribe to
    ``delivery.dead`` (finish_delivery.lua tells them of dead ad-hoc deliveries)."""
    return [
        {"id": e.id, "url": e.url, "events": {DELIVERY_DEAD: True}}
        for e in endpoints
        if not e.disabled and not e.bot_types and DELIVERY_DEAD in e.event_types
    ]
