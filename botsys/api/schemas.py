"""Marshmallow schemas for every request and response. They validate requests and, through
``openapi.py``, become the OpenAPI 3 document — one source, so the docs cannot drift.

Request fields are strict: JSON numbers must be numbers (``"3"`` is not 3), booleans must be
booleans, and unknown fields are rejected by name. Response schemas are strict too
(``additionalProperties: false``): schemathesis checks every answer against them.
"""

from __future__ import annotations

import numbers

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from ..control.routing import OPERATORS, RULES
from ..jobs import PRIORITY_DEFAULT, PRIORITY_MAX, PRIORITY_MIN
from ..states import DeliveryState, JobState
from ..store.errors import REFUSALS
from ..webhooks.endpoints import EVENT_TYPES

REFUSAL_KINDS = [r.kind for r in REFUSALS.values()]
JOB_STATES = list(JobState)
DELIVERY_STATES = list(DeliveryState)

MAX_DELAY_MS = 30 * 24 * 3600 * 1000  # a job may be scheduled up to 30 days ahead
MAX_URL = 2048
MAX_ID = 200
# The documented shape of a webhook URL: http(s), a host name (no IP literal), optional port
# and path. The server also accepts allowed IP literals; the SSRF guard has the last word.
WEBHOOK_URL_PATTERN = (
    r"^https?://[A-Za-z][A-Za-z0-9-]{0,62}(\.[A-Za-z][A-Za-z0-9-]{0,62}){1,4}"
    r"(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~-]{0,40}){0,4}$"
)
EVENT_TYPE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}\Z"
SECRET_PATTERN = r"^whsec_[A-Za-z0-9+/]{32,88}={0,2}\Z"
CURSOR_PATTERN = r"^[0-9]{1,15}_[a-z][a-z0-9_]{0,31}-[0-9A-Z]{26}\Z"  # \Z: `$` passes "...\n"


class StrictNumber(fields.Float):
    """A JSON number (int or float), never a string or a boolean."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValidationError("Not a valid number.")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictBool(fields.Boolean):
    """JSON true/false only (marshmallow would also take "yes", 1, "on")."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise ValidationError("Not a valid boolean.")
        return value


class StrictQueryBool(fields.Boolean):
    """A query flag: exactly ``true`` or ``false``."""

    truthy = {"true"}
    falsy = {"false"}


def _int(lo: int, hi: int, **kw) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(lo, hi), **kw)


# -- requests ------------------------------------------------------------------------------


TARGET_PATTERN = r"^(groupId|botType):[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z"


class InvokeRequest(Schema):
    botType = fields.String(
        metadata={"description": "a configured bot type (or give `target` instead)"}
    )
    bot = fields.String(
        validate=validate.Length(1, 64),
        metadata={"description": "a bot of that type (default: the type's default bot)"},
    )
    target = fields.String(
        validate=validate.Regexp(TARGET_PATTERN, error="groupId:<id> or botType:<type>"),
        metadata={
            "description": "instead of botType: `groupId:<id>` (the group's rule chooses the "
            "bot) or `botType:<type>` (the original system's field)"
        },
    )
    payload = fields.Dict(metadata={"description": "any JSON object, given to the bot on stdin"})
    params = fields.Dict(
        metadata={"description": "the original system's name for payload (give one of them)"}
    )
    webhookUrl = fields.String(
        validate=validate.Length(1, MAX_URL),
        metadata={"description": "where the result is POSTed (SSRF-guarded)"},
    )
    priority = _int(
        PRIORITY_MIN,
        PRIORITY_MAX,
        metadata={
            "description": "1 runs first; FIFO within a priority (default: the type's "
            f"defaultPriority, {PRIORITY_DEFAULT} unless set)"
        },
    )
    timeout = StrictNumber(
        validate=validate.Range(0.001, 86400),
        metadata={"description": "seconds; at most the bot type's maxTimeoutS"},
    )
    attempts = _int(1, 10, metadata={"description": "runs before the job is failed"})
    delay = _int(0, MAX_DELAY_MS, metadata={"description": "ms before the job may start"})

    @validates_schema(skip_on_field_errors=False)
    def _one_target(self, data, **kwargs):
        if "target" not in data and "botType" not in data:
            raise ValidationError("Missing data for required field.", "botType")
        if "target" in data and "botType" in data:
            raise ValidationError("give either target or botType, not both", "target")
        if "target" in data and "bot" in data:
            raise ValidationError("bot goes with botType; a group's rule chooses its bot", "bot")
        if "params" in data and "payload" in data and data["params"] != data["payload"]:
            raise ValidationError("params is another name for payload: give one", "params")


class GroupRule(Schema):
    """A routing rule; the fields besides type depend on it (docs/CONFIGURATION.md)."""

    type = fields.String(
        required=True,
        validate=validate.OneOf(RULES),
    )
    weights = fields.List(
        fields.Dict(),
        metadata={"description": "PERCENTAGE_BASED: [{member, weight}], integer weights"},
    )
    variants = fields.List(fields.Dict(), metadata={"description": "A_B_TEST: [{member, weight}]"})
    stickyKey = fields.String(
        metadata={"description": "A_B_TEST: a payload field; one value, one variant, always"}
    )
    slots = fields.List(
        fields.Dict(),
        metadata={
            "description": "TIME_BASED: [{member, start, end}], UTC HH:MM, sorted by start, "
            "not overlapping; end before start wraps midnight"
        },
    )
    branches = fields.List(
        fields.Dict(),
        metadata={
            "description": "PARAMETER_BASED: [{member, conditions: [{field, operator, value}]}]; "
            "operators " + ", ".join(OPERATORS)
        },
    )
    default = fields.String(
        metadata={"description": "TIME_BASED, PARAMETER_BASED: when no slot or branch applies"}
    )


class GroupBody(Schema):
    """A group as written: POST (with groupId) and PUT (groupId from the path)."""

    groupId = fields.String(metadata={"description": "POST: the new group's id"})
    name = fields.String(metadata={"description": "default: the id"})
    description = fields.String()
    members = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "targets: `type` (its default bot) or `type/bot`"},
    )
    rule = fields.Nested(GroupRule, required=True)


class DeliverRequest(Schema):
    url = fields.String(
        required=True,
        validate=validate.Length(1, MAX_URL),
        metadata={"description": "where the payload is POSTed (SSRF-guarded, as webhookUrl)"},
    )
    payload = fields.Raw(
        required=True,
        allow_none=True,
        metadata={"description": "any JSON value, sent as the body (at most 1 MiB serialised)"},
    )
    eventType = fields.String(
        validate=validate.Regexp(EVENT_TYPE_PATTERN),
        metadata={"description": "e.g. 'invoice.paid'; shown in lists, sent as X-Event-Type"},
    )
    idempotencyKey = fields.String(
        validate=[validate.Length(1, 200), validate.Regexp(r"^[\x20-\x7e]+\Z")],
        metadata={"description": "a repeat within 24 h answers the first delivery (200)"},
    )


class ReplayRequest(Schema):
    state = fields.String(
        required=True,
        validate=validate.OneOf([DeliveryState.DEAD, DeliveryState.DELIVERED]),
        metadata={"description": "replay the deliveries that ended in this state"},
    )
    since = fields.AwareDateTime(
        required=True,
        format="iso",
        metadata={"description": "ISO 8601 with a zone: deliveries that ended at or after it"},
    )
    endpoint = fields.String(
        validate=validate.Length(1, MAX_URL),
        metadata={"description": "only deliveries to this URL (exact match)"},
    )
    jobId = fields.String(
        validate=validate.Length(1, MAX_ID), metadata={"description": "only this job's"}
    )
    limit = _int(
        1, 10_000, load_default=1000, metadata={"description": "at most this many, oldest first"}
    )


class ReplayQuery(Schema):
    dryRun = StrictQueryBool(
        load_default=False,
        metadata={"description": "true: count what would be redelivered, send nothing"},
    )


class SecretRotate(Schema):
    secret = fields.String(
        validate=validate.Regexp(SECRET_PATTERN),
        metadata={
            "description": "the new secret, whsec_ + base64 of 24-64 bytes (default: random)"
        },
    )
    overlapS = _int(
        0,
        30 * 86400,
        metadata={
            "description": "seconds older secrets keep signing (default webhooks.secret_overlap_s)"
        },
    )


class EndpointPatch(Schema):
    url = fields.String(
        validate=validate.Length(1, MAX_URL),
        metadata={"description": "where its deliveries are POSTed (SSRF-guarded, as webhookUrl)"},
    )
    eventTypes = fields.List(
        fields.String(validate=validate.OneOf(EVENT_TYPES)),
        validate=validate.Length(1, len(EVENT_TYPES)),
        metadata={"description": "the events it subscribes to (default: every job event)"},
    )
    botTypes = fields.List(
        fields.String(validate=validate.Length(1, 32)),
        validate=validate.Length(0, 100),
        metadata={"description": "only these bot types' jobs ([] or absent: every type)"},
    )
    description = fields.String(validate=validate.Length(0, 200))
    disabled = StrictBool(
        metadata={
            "description": "true: no delivery is created for it and pending ones are held; "
            "false again: what was held goes out"
        }
    )
    rateLimit = StrictNumber(
        validate=validate.Range(0, 10_000),
        metadata={
            "description": "at most this many deliveries/s to it, all replicas together (0: none)"
        },
    )


class EndpointCreate(EndpointPatch):
    url = fields.String(
        required=True,
        validate=validate.Length(1, MAX_URL),
        metadata={"description": "where its deliveries are POSTed (SSRF-guarded, as webhookUrl)"},
    )
    secret = fields.String(
        validate=validate.Regexp(SECRET_PATTERN),
        metadata={"description": "its signing secret, whsec_... (default: a random one)"},
    )


class QueuePatch(Schema):
    limit = _int(0, 100_000, metadata={"description": "live concurrency limit, all replicas"})
    paused = StrictBool(metadata={"description": "true stops new starts; running bots finish"})


class JobsQuery(Schema):
    botType = fields.String(metadata={"description": "only this bot type (default: all)"})
    state = fields.String(validate=validate.OneOf(JOB_STATES))
    limit = fields.Integer(validate=validate.Range(1, 200), load_default=50)
    cursor = fields.String(
        validate=validate.Regexp(CURSOR_PATTERN),
        metadata={"description": "nextCursor of the previous page (opaque)"},
    )
    q = fields.String(
        validate=validate.Length(max=200),
        metadata={
            "description": "text search, case-insensitive, in the job id, bot, payload, result "
            "and error (scans at most 5000 jobs per bot type)"
        },
    )


class LogsQuery(Schema):
    tail = fields.Integer(validate=validate.Range(1, 2000), load_default=500)


class DeliveriesQuery(Schema):
    state = fields.String(validate=validate.OneOf(DELIVERY_STATES))
    jobId = fields.String(validate=validate.Length(1, MAX_ID))
    limit = fields.Integer(validate=validate.Range(1, 200), load_default=50)


# -- responses -----------------------------------------------------------------------------


def _s(**kw) -> fields.String:
    return fields.String(required=True, **kw)


def _n(field: fields.Field) -> fields.Field:
    """Required but nullable."""
    field.required = True
    field.allow_none = True
    return field


class Problem(Schema):
    type = _s()
    title = _s()
    status = fields.Integer(required=True)
    detail = _s()
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), required=True)


class GroupSelection(Schema):
    groupId = _s()
    rule = _s()
    member = _s()


class GroupView(Schema):
    groupId = _s()
    name = _s()
    description = _s()
    members = fields.List(fields.String(), required=True)
    rule = fields.Nested(GroupRule, required=True)
    version = fields.Integer(required=True)


class GroupList(Schema):
    botGroups = fields.List(fields.Nested(GroupView), required=True)
    version = fields.Integer(required=True, metadata={"description": "latest of any group"})


class Invoked(Schema):
    jobId = _s()
    status = _s(validate=validate.OneOf([JobState.QUEUED, JobState.DELAYED]))
    botType = _s()
    bot = _s()
    priority = fields.Integer(required=True)
    statusUrl = _s()
    created = fields.Boolean(
        required=True, metadata={"description": "false: an earlier job with this Idempotency-Key"}
    )
    estimatedPosition = fields.Integer(
        required=True,
        allow_none=True,
        metadata={
            "description": "jobs of its type waiting ahead of it when it was accepted (0: next, "
            "or already started); null for a repeat. The original system's field."
        },
    )
    group = _n(fields.Nested(GroupSelection, metadata={"description": "a group target's pick"}))


class WebhookState(Schema):
    url = _s()
    deliveryId = _n(fields.String())
    state = _s()
    attempts = fields.Integer(required=True)
    lastStatus = _n(fields.Integer())
    deliveredAt = _n(fields.String())


class JobSummary(Schema):
    """A job in a list: no payload or result (GET /job/{jobId} has them); error cut short."""

    jobId = _s()
    botType = _s()
    bot = _s()
    state = _s(validate=validate.OneOf(JOB_STATES))
    progress = fields.Integer(required=True)
    priority = _n(fields.Integer())
    attempt = fields.Integer(required=True)
    maxAttempts = fields.Integer(required=True)
    createdAt = _n(fields.String())
    startedAt = _n(fields.String())
    finishedAt = _n(fields.String())
    runAt = _n(fields.String())
    durationMs = _n(fields.Integer())
    error = _n(fields.String(metadata={"description": "at most 300 characters"}))
    replica = _n(fields.String())
    webhook = _n(fields.Nested(WebhookState))
    group = _n(
        fields.Nested(GroupSelection, metadata={"description": "invoked through a bot group"})
    )


class JobView(JobSummary):
    """A job whole: GET /job/{jobId}."""

    result = _n(fields.Raw())
    error = _n(fields.String())
    payload = _n(fields.Raw())
    waitingFor = fields.String(
        validate=validate.OneOf(["cadence"]),
        metadata={"description": "queued, held by its type's cadence (starts per interval)"},
    )
    startsAfter = fields.String(
        metadata={"description": "with waitingFor: the earliest a job of its type may start"}
    )


class JobsPage(Schema):
    jobs = fields.List(fields.Nested(JobSummary), required=True)
    nextCursor = _n(fields.String())


class Cancelled(Schema):
    jobId = _s()
    state = _s(validate=validate.OneOf([JobState.CANCELLED, "cancelling"]))


class Retried(Schema):
    jobId = _s()
    status = _s(validate=validate.OneOf([JobState.QUEUED]))
    statusUrl = _s()


class Logs(Schema):
    jobId = _s()
    lines = fields.List(fields.String(), required=True)


class TypeStats(Schema):
    waiting = fields.Integer(required=True)
    delayed = fields.Integer(required=True)
    running = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    paused = fields.Boolean(required=True)
    succeeded = fields.Integer(required=True)
    failed = fields.Integer(required=True)
    timed_out = fields.Integer(required=True)
    cancelled = fields.Integer(required=True)


class WebhookStats(Schema):
    pending = fields.Integer(required=True)
    delivered = fields.Integer(required=True)
    failed = fields.Integer(required=True)


class Stats(Schema):
    botTypes = fields.Dict(keys=fields.String(), values=fields.Nested(TypeStats), required=True)
    webhooks = fields.Nested(WebhookStats, required=True)


class BotDoc(Schema):
    summary = fields.String(required=True, metadata={"description": "what the bot does"})
    payload = fields.String(
        required=True, metadata={"description": "what the job's payload must hold ('' if unsaid)"}
    )


class BotType(Schema):
    botType = _s()
    bots = fields.List(fields.String(), required=True)
    docs = fields.Dict(
        keys=fields.String(),
        values=fields.Nested(BotDoc),
        required=True,
        metadata={"description": "per bot: the header of its file (docs/BOTS.md)"},
    )
    defaultBot = _s()
    limit = fields.Integer(required=True)
    timeoutS = fields.Float(required=True)
    maxTimeoutS = fields.Float(required=True)
    maxAttempts = fields.Integer(required=True)
    extension = _s()


class Bots(Schema):
    botTypes = fields.List(fields.Nested(BotType), required=True)


class QueueView(Schema):
    botType = _s()
    limit = fields.Integer(required=True)
    paused = fields.Boolean(required=True)
    waiting = fields.Integer(required=True)
    delayed = fields.Integer(required=True)
    running = fields.Integer(required=True)


class DeliveryAttempt(Schema):
    attempt = fields.Integer(required=True)
    at = _n(fields.String())
    durationMs = _n(fields.Float())
    statusCode = _n(fields.Integer())
    error = _n(fields.String())
    outcome = _n(fields.String())
    response = _n(fields.String())


class DeliverySummary(Schema):
    """A delivery in a list: no body or history (GET /deliveries/{deliveryId} has them)."""

    deliveryId = _s()
    jobId = _n(fields.String(metadata={"description": "null: an ad-hoc delivery"}))
    botType = _n(fields.String())
    eventType = _n(fields.String())
    endpointId = _n(fields.String(metadata={"description": "set: a subscribed endpoint's"}))
    url = _s()
    state = _s(validate=validate.OneOf(DELIVERY_STATES))
    attempts = fields.Integer(required=True)
    maxAttempts = fields.Integer(required=True)
    createdAt = _n(fields.String())
    nextAttemptAt = _n(fields.String())
    finishedAt = _n(fields.String())
    lastStatus = _n(fields.Integer())


class Delivery(DeliverySummary):
    """A delivery whole: GET /deliveries/{deliveryId}."""

    body = _n(fields.Raw())
    history = fields.List(fields.Nested(DeliveryAttempt), required=True)


class Deliveries(Schema):
    deliveries = fields.List(fields.Nested(DeliverySummary), required=True)


class DeliverAccepted(Schema):
    deliveryId = _s()
    created = fields.Boolean(required=True)
    statusUrl = _s()


class RingSecret(Schema):
    fingerprint = _s(metadata={"description": "first 12 hex digits of the secret's SHA-256"})
    createdAt = _n(fields.String())
    expiresAt = _n(fields.String(metadata={"description": "null: the current secret"}))
    signing = fields.Boolean(required=True)


class SecretRing(Schema):
    secrets = fields.List(fields.Nested(RingSecret), required=True)


class SecretRotated(SecretRing):
    secret = _s(metadata={"description": "the new current secret; shown only here"})


class Replayed(Schema):
    matched = fields.Integer(required=True)
    redelivered = fields.Integer(required=True, metadata={"description": "0 on a dry run"})
    dryRun = fields.Boolean(required=True)


class EndpointView(Schema):
    endpointId = _s()
    url = _s()
    eventTypes = fields.List(fields.String(), required=True)
    botTypes = fields.List(fields.String(), required=True)
    description = _s()
    disabled = fields.Boolean(required=True)
    disabledAt = _n(fields.String(metadata={"description": "when it was disabled"}))
    disabledReason = _n(
        fields.String(metadata={"description": "why: by hand, or failing for too long"})
    )
    rateLimit = fields.Float(required=True)
    breaker = _n(
        fields.String(
            validate=validate.OneOf(["closed", "open", "half_open"]),
            metadata={"description": "its circuit as the cluster has it (null: none recorded yet)"},
        )
    )
    createdAt = _n(fields.String())
    updatedAt = _n(fields.String())
    secrets = fields.List(fields.Nested(RingSecret), required=True)


class EndpointCreated(EndpointView):
    secret = _s(metadata={"description": "its signing secret; shown only here"})


class Endpoints(Schema):
    endpoints = fields.List(fields.Nested(EndpointView), required=True)


class Redelivered(Schema):
    deliveryId = _s()
    state = _s(validate=validate.OneOf([DeliveryState.PENDING]))


class Health(Schema):
    status = _s(validate=validate.OneOf(["ok", "degraded"]))
    redis = _s(validate=validate.OneOf(["ok", "unreachable", *REFUSAL_KINDS]))
    reasons = fields.List(fields.String(), metadata={"description": "why it is degraded"})
    embedded = fields.Boolean(required=True)
    replica = _s()
    version = _s()
    uptimeSeconds = fields.Float(required=True)
