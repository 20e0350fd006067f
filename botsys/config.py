"""Settings: the built-in defaults (botsys/defaults.toml), the user's config file laid over them,
then environment overrides, validated once into frozen dataclasses.

This is the only module that reads ``os.environ`` (for settings). Every problem raises
``ConfigError`` whose message is one line naming the key, the bad value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_CONFIG = PACKAGE_DIR / "defaults.toml"  # package data: every key, with its default
BUNDLED_BOTS = PACKAGE_DIR / "bots"  # package data: the example bots, used when bots_dir = ""


class ConfigError(ValueError):
    """A bad configuration value; ``str(err)`` is the one line shown to the user."""


def _spec(default: Any, *, lo: float | None = None, hi: float | None = None, choices=None, doc=""):
    """A dataclass field carrying its own validation bounds."""
    meta = {"lo": lo, "hi": hi, "choices": choices, "doc": doc}
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class ServerSettings:
    host: str = _spec("127.0.0.1")
    port: int = _spec(3000, lo=0, hi=65535)
    replica: str = _spec("")  # empty: <hostname>-<pid>
    drain_timeout_s: float = _spec(30.0, lo=0, hi=86400)
    max_body_bytes: int = _spec(1048576, lo=1024, hi=1 << 30)
    body_timeout_s: float = _spec(30.0, lo=0.1, hi=3600)  # a body must arrive within this (408)
    insecure: bool = _spec(False)


@dataclass(frozen=True)
class RedisSettings:
    url: str = _spec("")  # empty: embedded in-memory store
    prefix: str = _spec("botsys")
    connect_timeout_s: float = _spec(5.0, lo=0.1, hi=600)
    startup_retry_max_s: float = _spec(10.0, lo=0.1, hi=600)
    max_connections: int = _spec(100, lo=4, hi=10000)
    pool_timeout_s: float = _spec(5.0, lo=0.01, hi=600)


@dataclass(frozen=True)
class EngineSettings:
    lease_ms: int = _spec(30000, lo=500, hi=3_600_000)
    heartbeat_ms: int = _spec(10000, lo=100, hi=1_200_000)
    max_in_flight: int = _spec(64, lo=1, hi=10000)
    max_stalls: int = _spec(2, lo=0, hi=100)
    retry_delay_ms: int = _spec(1000, lo=0, hi=86_400_000)
    retry_max_delay_ms: int = _spec(300_000, lo=0, hi=86_400_000)
    idle_wait_s: float = _spec(1.0, lo=0.01, hi=60)
    retention_s: int = _spec(86400, lo=1, hi=365 * 86400)
    failed_retention_s: int = _spec(7 * 86400, lo=1, hi=365 * 86400)
    max_index: int = _spec(10000, lo=10, hi=10_000_000)
    keep_finished: int = _spec(10000, lo=1, hi=10_000_000)
    max_queued: int = _spec(50000, lo=0, hi=100_000_000)  # 0: no cap
    max_queued_bytes: int = _spec(64 << 20, lo=0, hi=1 << 40)  # 0: no cap


@dataclass(frozen=True)
class RunnerSettings:
    bots_dir: str = _spec("")  # empty: the bots bundled with the package
    log_cap_kb: int = _spec(256, lo=1, hi=1 << 20)
    result_cap_kb: int = _spec(1024, lo=1, hi=1 << 20)
    kill_grace_s: float = _spec(5.0, lo=0, hi=3600)
    cache_dir: str = _spec("")  # empty: a folder under the system temp dir
    bot_user: str = _spec("botsys-bot", doc="who runs bots when the server is root")
    java: str = _spec("", doc="JDK home or java binary for {java}; empty: the newest found")


@dataclass(frozen=True)
class BotTypeSettings:
    name: str = _spec("")
    command: list[str] = _spec(
        [],
        doc="argv template: {script} {bot} {build} {classpath} {python} {java} {workdir}",
    )
    compile: list[str] = _spec([], doc="optional compile step, cached per script content hash")
    extension: str = _spec("")
    default_bot: str = _spec("simulate")
    limit: int = _spec(5, lo=0, hi=100000)
    timeout_s: float = _spec(300.0, lo=0.1, hi=7 * 86400)
    max_timeout_s: float = _spec(3600.0, lo=0.1, hi=7 * 86400)
    max_attempts: int = _spec(1, lo=1, hi=10)
    memory_mb: int = _spec(0, lo=0, hi=1 << 20)  # 0: no limit
    memory_rlimit: str = _spec("data", choices=("data", "as"))
    cpu_s: int = _spec(0, lo=0, hi=7 * 86400)
    open_files: int = _spec(256, lo=0, hi=1 << 20)
    file_size_mb: int = _spec(64, lo=0, hi=1 << 20)
    processes: int = _spec(0, lo=0, hi=1 << 20)
    run_as: str = _spec("")
    network: str = _spec("host", choices=("host", "none"))
    env: list[str] = _spec([], doc="extra NAME=value pairs given to every bot of the type")
    # The control plane's fields (docs/CONFIGURATION.md "Bot types at runtime"): a type made at
    # runtime inherits the command and sandbox of its runtime, one of the configured types.
    runtime: str = _spec("", doc="the configured type whose command it runs ('' = itself)")
    bots: list[str] = _spec([], doc="allow-list of bot names ([] = every bot in its folder)")
    bots_dir: str = _spec("", doc="its own bots folder ('' = <runner.bots_dir>/<runtime>)")
    cadence_max: int = _spec(0, lo=0, hi=100000, doc="starts per cadence_interval_s; 0 = off")
    cadence_interval_s: float = _spec(1.0, lo=0.001, hi=86400)
    cadence_mode: str = _spec("queue", choices=("queue", "reject"))
    default_priority: int = _spec(3, lo=1, hi=1000)
    description: str = _spec("")
    # start = "fork" (Python): attempts fork from a warm zygote (docs/BOTS.md "Warm starts")
    start: str = _spec("spawn", choices=("spawn", "fork"))
    preload: list[str] = _spec([], doc="modules a fork-mode zygote imports once for every bot")


@dataclass(frozen=True)
class WebhookSettings:
    max_retries: int = _spec(5, lo=1, hi=100)
    retry_delay_ms: int = _spec(1000, lo=0, hi=86_400_000)
    max_delay_ms: int = _spec(3_600_000, lo=0, hi=7 * 86_400_000)
    timeout_s: float = _spec(15.0, lo=0.1, hi=600)
    secret: str = _spec("")
    secret_overlap_s: int = _spec(86400, lo=0, hi=30 * 86400)
    allow: list[str] = _spec(["localhost:5000", "mock-webhook:5000"])
    concurrency: int = _spec(64, lo=1, hi=10000)
    per_host: int = _spec(8, lo=1, hi=10000)
    lease_ms: int = _spec(60000, lo=500, hi=3_600_000)
    breaker_window: int = _spec(20, lo=2, hi=10_000)
    breaker_failure_ratio: float = _spec(0.5, lo=0.01, hi=1.0)
    breaker_open_s: float = _spec(30.0, lo=0.05, hi=86_400)
    endpoint_disable_after_s: float = _spec(432_000.0, lo=0.5, hi=365 * 86_400)


@dataclass(frozen=True)
class ApiSettings:
    keys: list[str] = _spec([])
    admin_keys: list[str] = _spec([])
    rate_limit: str = _spec("600/minute")
    cors_origins: list[str] = _spec([])
    trusted_proxies: list[str] = _spec([], doc="CIDRs whose X-Forwarded-For is believed")


@dataclass(frozen=True)
class LoggingSettings:
    level: str = _spec("INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    format: str = _spec("json", choices=("json", "text"))


@dataclass(frozen=True)
class MockWebhookSettings:
    host: str = _spec("127.0.0.1")
    port: int = _spec(5000, lo=0, hi=65535)
    failure_rate: float = _spec(0.0, lo=0, hi=1)
    history: int = _spec(1000, lo=1, hi=1_000_000)


SECTIONS: dict[str, type] = {
    "server": ServerSettings,
    "redis": RedisSettings,
    "engine": EngineSettings,
    "runner": RunnerSettings,
    "webhooks": WebhookSettings,
    "api": ApiSettings,
    "logging": LoggingSettings,
    "mock_webhook": MockWebhookSettings,
}


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    runner: RunnerSettings = field(default_factory=RunnerSettings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    mock_webhook: MockWebhookSettings = field(default_factory=MockWebhookSettings)
    bot_types: Mapping[str, BotTypeSettings] = field(default_factory=lambda: MappingProxyType({}))
    source: str = "defaults"


# Environment variable → dotted config key. The seed's names keep working.
ENV_KEYS: dict[str, str] = {
    "REDIS_URL": "redis.url",
    "BOTSYS_REDIS_PREFIX": "redis.prefix",
    "API_GATEWAY_PORT": "server.port",
    "BOTSYS_HOST": "server.host",
    "BOTSYS_REPLICA": "server.replica",
    "BOTSYS_DRAIN_TIMEOUT": "server.drain_timeout_s",
    "MAX_PYTHON_BOTS": "bot_types.python.limit",
    "MAX_NODE_BOTS": "bot_types.node.limit",
    "MAX_JAVA_BOTS": "bot_types.java.limit",
    "BOTSYS_BOTS_DIR": "runner.bots_dir",
    "BOTSYS_BOT_USER": "runner.bot_user",
    "BOTSYS_JAVA": "runner.java",
    "WEBHOOK_MAX_RETRIES": "webhooks.max_retries",
    "WEBHOOK_RETRY_DELAY": "webhooks.retry_delay_ms",
    "WEBHOOK_TIMEOUT": "webhooks.timeout_s",
    "BOTSYS_WEBHOOK_SECRET": "webhooks.secret",
    "BOTSYS_WEBHOOK_ALLOW": "webhooks.allow",
    "BOTSYS_API_KEYS": "api.keys",
    "BOTSYS_ADMIN_KEYS": "api.admin_keys",
    "BOTSYS_RATE_LIMIT": "api.rate_limit",
    "BOTSYS_CORS_ORIGINS": "api.cors_origins",
    "BOTSYS_TRUSTED_PROXIES": "api.trusted_proxies",
    "BOTSYS_LOG_LEVEL": "logging.level",
    "BOTSYS_LOG_FORMAT": "logging.format",
    "MOCK_WEBHOOK_PORT": "mock_webhook.port",
    "BOTSYS_LEASE_MS": "engine.lease_ms",
    "BOTSYS_HEARTBEAT_MS": "engine.heartbeat_ms",
}

SECRET_KEYS = frozenset({"webhooks.secret", "api.keys", "api.admin_keys", "redis.url"})
_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")  # always fullmatch: `$` passes "x\n"
_RATE = re.compile(r"0|\d+/(second|minute|hour)")


def load_settings(
    path: str | os.PathLike | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """The built-in defaults, then the user's file (``path`` / BOTSYS_CONFIG) laid over them
    (only the keys it sets change), then the environment, then explicit overrides (flags)."""
    environ = os.environ if environ is None else environ
    raw = _read_toml(DEFAULT_CONFIG)
    user_file = config_path(path, environ)
    if user_file is not None:
        _merge(raw, _read_toml(user_file))
    _apply_environment(raw, environ)
    for key, value in (overrides or {}).items():
        _set_dotted(raw, key, value)
    return build_settings(raw, source=str(user_file or DEFAULT_CONFIG))


def config_path(path: str | os.PathLike | None, environ: Mapping[str, str]) -> Path | None:
    """The user's config file: ``--config``, else BOTSYS_CONFIG, else none (defaults only)."""
    chosen = path or environ.get("BOTSYS_CONFIG")
    if not chosen or Path(chosen).resolve() == DEFAULT_CONFIG:
        return None
    return Path(chosen).expanduser()


def _apply_environment(raw: dict, environ: Mapping[str, str]) -> None:
    for env_name, key in ENV_KEYS.items():
        if env_name not in environ:
            continue
        if key.startswith("bot_types.") and key.split(".")[1] not in raw.get("bot_types", {}):
            continue  # MAX_JAVA_BOTS means nothing when the config defines no java type
        _set_dotted(raw, key, _env_value(env_name, key, environ[env_name]))


# The original system's variables that botsys has no use for: warned about at start-up, so a
# migrated deployment does not silently lose a setting (docs/MIGRATING.md has the mapping).
ORIGINAL_ONLY_ENV: dict[str, str] = {
    "WEBHOOK_MANAGER_PORT": "botsys has no webhook manager service: every `serve` replica "
    "delivers webhooks itself, on no port of its own",
    "WEBHOOK_MANAGER_URL": "botsys has no webhook manager service: deliveries need no URL",
    "ORCHESTRATOR_PORT": "the orchestrator runs inside `serve`; its metrics are on the API port",
    "WORKERS_PORT": "bots run inside `serve`; their metrics are on the API port",
    "REDIS_HOST": "set REDIS_URL=redis://HOST:6379 (without it botsys uses its embedded store)",
    "REDIS_PORT": "set REDIS_URL=redis://HOST:PORT",
    "ADMIN_API_KEY": "set BOTSYS_ADMIN_KEYS (and BOTSYS_API_KEYS for the job routes)",
    "API_GATEWAY_BASE_PATH": "botsys serves at the root path; prefix it in your load balancer",
    "DEFAULT_WORKER_SEMAPHORE_MAX": "set MAX_PYTHON_BOTS / MAX_NODE_BOTS / MAX_JAVA_BOTS",
}


def ignored_environment(environ: Mapping[str, str] | None = None) -> list[str]:
    """One warning line per variable of the original system that is set but means nothing here."""
    environ = os.environ if environ is None else environ
    return [
        f"{name} is set but ignored: {why}"
        for name, why in ORIGINAL_ONLY_ENV.items()
        if name in environ
    ]


def build_settings(raw: Mapping[str, Any], source: str = "dict") -> Settings:
    """Validate a nested mapping (the shape of defaults.toml) into ``Settings``."""
    unknown = set(raw) - set(SECTIONS) - {"bot_types"}
    if unknown:
        allowed = ", ".join([*SECTIONS, "bot_types"])
        raise ConfigError(f"unknown section [{sorted(unknown)[0]}]; allowed: {allowed}")
    sections = {name: _build(cls, raw.get(name, {}), name) for name, cls in SECTIONS.items()}
    types = raw.get("bot_types", {})
    if not isinstance(types, Mapping):
        raise ConfigError("bot_types must be a table of bot types")
    bot_types = {name: _build_bot_type(name, spec) for name, spec in types.items()}
    settings = Settings(**sections, bot_types=MappingProxyType(bot_types), source=source)
    _check_cross_fields(settings)
    return settings


def _build_bot_type(name: str, spec: Any) -> BotTypeSettings:
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"bot_types.{name}: bot type names are lowercase identifiers (a-z, 0-9, _)"
        )
    if not isinstance(spec, Mapping):
        raise ConfigError(f"bot_types.{name} must be a table")
    bt = _build(BotTypeSettings, {**spec, "name": name}, f"bot_types.{name}")
    if not bt.command:
        raise ConfigError(f"bot_types.{name}.command = []: a command template is required")
    if not bt.extension.startswith("."):
        raise ConfigError(f"bot_types.{name}.extension = {bt.extension!r}: must start with '.'")
    if bt.runtime not in ("", name):
        raise ConfigError(
            f"bot_types.{name}.runtime = {bt.runtime!r}: a configured type is a runtime itself; "
            "create types on other runtimes through /admin/config/bot-types"
        )
    if bt.timeout_s > bt.max_timeout_s:
        raise ConfigError(
            f"bot_types.{name}.timeout_s = {bt.timeout_s}: must be ≤ max_timeout_s ({bt.max_timeout_s})"
        )
    return bt


def _check_cross_fields(s: Settings) -> None:
    if s.engine.heartbeat_ms * 2 > s.engine.lease_ms:
        raise ConfigError(
            f"engine.heartbeat_ms = {s.engine.heartbeat_ms}: must be at most half of "
            f"engine.lease_ms ({s.engine.lease_ms}) so a lease is renewed before it expires"
        )
    if not _RATE.fullmatch(s.api.rate_limit):
        raise ConfigError(
            f"api.rate_limit = {s.api.rate_limit!r}: expected N/second, N/minute, N/hour or 0 (off)"
        )
    for cidr in s.api.trusted_proxies:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise ConfigError(
                f"api.trusted_proxies: {cidr!r} is not an IP address or CIDR"
            ) from None
    queued_bytes = s.engine.max_queued_bytes
    if queued_bytes and queued_bytes < s.server.max_body_bytes:
        raise ConfigError(
            f"engine.max_queued_bytes = {queued_bytes}: must be 0 (no cap) or at least "
            f"server.max_body_bytes ({s.server.max_body_bytes}), or a large job could never queue"
        )
    secret = s.webhooks.secret
    if secret and not secret.startswith("whsec_"):
        raise ConfigError("webhooks.secret: must start with 'whsec_' (value not shown)")


def open_api_bind_error(s: Settings) -> str | None:
    """Why ``serve`` must not start: an open API (no keys) bound beyond loopback. An empty
    host or a wildcard (0.0.0.0, ::) binds every interface; ``server.insecure`` allows it."""
    if s.api.keys or s.api.admin_keys or s.server.insecure or _is_loopback_bind(s.server.host):
        return None
    shown = repr(s.server.host) if s.server.host else '"" (every interface)'
    return (
        f"refusing to serve server.host = {shown} with no API keys: set BOTSYS_API_KEYS "
        "(or api.keys), bind a loopback address, or pass --insecure to expose an open API"
    )


def _is_loopback_bind(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "", a host name (may resolve to anything) or a wildcard


def _build(cls: type, values: Any, where: str):
    if not isinstance(values, Mapping):
        raise ConfigError(f"[{where}] must be a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in values:
        if key not in fields:
            allowed = ", ".join(n for n in fields if n != "name")
            raise ConfigError(f"unknown key {where}.{key}; allowed: {allowed}")
    kwargs = {k: _check(f"{where}.{k}", v, fields[k]) for k, v in values.items()}
    return cls(**kwargs)


def _check(key: str, value: Any, f: dataclasses.Field) -> Any:
    kind = _kind(f)
    shown = "(value not shown)" if key in SECRET_KEYS else repr(value)
    checker = {bool: _check_bool, int: _check_number, float: _check_number, str: _check_str}
    return checker.get(kind, _check_list)(key, shown, value, kind, f.metadata)


# A leaf field's annotation (a string: this module postpones annotations) → the kind of value
# it holds, which picks its checker and how an environment value converts.
FIELD_KINDS: dict[str, type] = {
    "bool": bool,
    "int": int,
    "float": float,
    "str": str,
    "list[str]": list,
}


def _kind(f: dataclasses.Field) -> type:
    try:
        return FIELD_KINDS[f.type]
    except KeyError:
        raise TypeError(f"setting {f.name}: annotation {f.type!r} is not in FIELD_KINDS") from None


def _check_bool(key, shown, value, kind, meta):
    if not isinstance(value, bool):
        raise ConfigError(f"{key} = {shown}: must be true or false")
    return value


def _check_number(key, shown, value, kind, meta):
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key} = {shown}: must be a number")
    if kind is int and not float(value).is_integer():
        raise ConfigError(f"{key} = {shown}: must be a whole number")
    value = kind(value)
    lo, hi = meta.get("lo"), meta.get("hi")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"{key} = {shown}: must be between {lo} and {hi}")
    return value


def _check_str(key, shown, value, kind, meta):
    if not isinstance(value, str):
        raise ConfigError(f"{key} = {shown}: must be a string")
    choices = meta.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"{key} = {shown}: must be one of {', '.join(choices)}")
    return value


def _check_list(key, shown, value, kind, meta):
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{key} = {shown}: must be a list of strings")
    return list(value)


def _env_value(env_name: str, key: str, text: str) -> Any:
    """Environment values are strings; convert by the target field's type."""
    kind = _field_type(key)
    shown = "(value not shown)" if key in SECRET_KEYS else repr(text)
    wanted = {bool: "true or false", int: "a whole number", float: "a number"}
    try:
        if kind is bool:
            return {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}[
                text.strip().lower()
            ]
        if kind is int:
            return int(text.strip())
        if kind is float:
            return float(text.strip())
    except (KeyError, ValueError):
        raise ConfigError(f"{env_name}={shown} ({key}): must be {wanted[kind]}") from None
    if kind is list:
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


def _field_type(key: str) -> type:
    parts = key.split(".")
    cls = BotTypeSettings if parts[0] == "bot_types" else SECTIONS[parts[0]]
    return _kind({f.name: f for f in dataclasses.fields(cls)}[parts[-1]])


def _merge(base: dict, extra: Mapping[str, Any]) -> None:
    """Deep-merge tables; anything else in ``extra`` replaces the base value."""
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def _set_dotted(raw: dict, key: str, value: Any) -> None:
    node = raw
    *parents, last = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def _read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
