"""The command line: serve, mock-webhook, run-bot, bots, invoke, stats."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import textwrap
from typing import Any

from . import __version__
from .config import ConfigError, Settings, load_settings, open_api_bind_error
from .listen import BindError

EXAMPLES = """examples:
  python -m botsys serve                          # embedded store, http://127.0.0.1:3000
  REDIS_URL=redis://127.0.0.1:6379 python -m botsys serve --port 3001   # a replica
  python -m botsys mock-webhook                   # test receiver on :5000
  python -m botsys run-bot python/data_analysis --payload '{"numbers": [1, 2, 3]}'
  python -m botsys invoke python --bot data_analysis --payload '{"numbers": [4, 5]}' --wait
  python -m botsys stats
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="botsys",
        description="Run Python, Node.js and Java bots on demand over HTTP.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"botsys {__version__}")
    p.add_argument(
        "--config",
        help="your config file, laid over the built-in defaults (default: BOTSYS_CONFIG; "
        "none = defaults only)",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("serve", help="run the API, dispatchers, runners and webhook delivery")
    s.add_argument("--host", help="bind address (default 127.0.0.1; config server.host)")
    s.add_argument("--port", type=int, help="port (default 3000; API_GATEWAY_PORT)")
    s.add_argument(
        "--redis-url", help="redis://… (default REDIS_URL; none = embedded in-memory store)"
    )
    s.add_argument(
        "--insecure", action="store_true", help="allow a public bind address without API keys"
    )
    s.add_argument("--log-format", choices=("json", "text"), help="log format (default json)")
    s.add_argument(
        "--log-level",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="least severe log level written (default INFO; BOTSYS_LOG_LEVEL)",
    )
    s.add_argument("--check", action="store_true", help="validate the configuration and exit")

    m = sub.add_parser("mock-webhook", help="run the testing webhook receiver")
    m.add_argument("--host", help="bind address (default 127.0.0.1)")
    m.add_argument("--port", type=int, help="port (default 5000; MOCK_WEBHOOK_PORT)")

    r = sub.add_parser("run-bot", help="run one bot locally through the runner (no Redis)")
    r.add_argument("target", metavar="TYPE/BOT", help="e.g. python/simulate or java")
    r.add_argument("--payload", default="{}", help="JSON payload (default {})")

    sub.add_parser("bots", help="list bot types and their bots")

    for name, text in (
        ("invoke", "post a job to a running server"),
        ("stats", "show queue counts"),
    ):
        c = sub.add_parser(name, help=text)
        c.add_argument(
            "--url",
            default=os.environ.get("BOTSYS_URL", "http://127.0.0.1:3000"),
            help="server URL (default BOTSYS_URL or http://127.0.0.1:3000)",
        )
        c.add_argument(
            "--api-key",
            default=os.environ.get("BOTSYS_API_KEY", ""),
            help="API key (default BOTSYS_API_KEY)",
        )
        if name == "invoke":
            c.add_argument(
                "bot_type",
                metavar="TYPE",
                help="bot type: python, node, java or one you configured (`botsys bots` lists them)",
            )
            c.add_argument("--bot", help="bot name (default: the type's default bot)")
            c.add_argument("--payload", default="{}", help="JSON payload")
            c.add_argument("--priority", type=int, help="1 (most urgent) … 1000")
            c.add_argument("--webhook-url", help="where to deliver the result")
            c.add_argument(
                "--wait", action="store_true", help="follow progress, then print the result"
            )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config, overrides=_overrides(args))
        return COMMANDS[args.command](args, settings)
    except ConfigError as exc:
        print(f"botsys: config error: {exc}", file=sys.stderr)
        return 2
    except (UsageError, BindError) as exc:
        print(f"botsys: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


class UsageError(Exception):
    pass


def _overrides(args) -> dict[str, Any]:
    pairs = {
        "server.host": getattr(args, "host", None) if args.command == "serve" else None,
        "server.port": getattr(args, "port", None) if args.command == "serve" else None,
        "redis.url": getattr(args, "redis_url", None),
        "server.insecure": True if getattr(args, "insecure", False) else None,
        "logging.format": getattr(args, "log_format", None),
        "logging.level": getattr(args, "log_level", None),
        "mock_webhook.host": getattr(args, "host", None)
        if args.command == "mock-webhook"
        else None,
        "mock_webhook.port": getattr(args, "port", None)
        if args.command == "mock-webhook"
        else None,
    }
    return {k: v for k, v in pairs.items() if v is not None}


def _json_arg(text: str, name: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{name} is not valid JSON: {exc}") from None


def cmd_serve(args, settings: Settings) -> int:
    refusal = open_api_bind_error(settings)
    if refusal:
        raise UsageError(refusal)
    if args.check:
        print(f"configuration ok ({settings.source})")
        return 0
    from .serve import serve

    return serve(settings)


def cmd_mock_webhook(args, settings: Settings) -> int:
    from .logs import setup_logging
    from .mock_webhook import serve_mock_webhook

    setup_logging(settings.logging.level, settings.logging.format, "mock-webhook")
    asyncio.run(serve_mock_webhook(settings))  # prints its URL once it listens
    return 0


def cmd_run_bot(args, settings: Settings) -> int:
    from .runners.local import run_local

    payload = _json_arg(args.payload, "--payload")
    return asyncio.run(run_local(settings, args.target, payload, sys.stdout))


def cmd_bots(args, settings: Settings) -> int:
    from .runners.registry import BotRegistry

    registry = BotRegistry(settings)
    print(f"bots folder: {registry.root}")
    for t in registry.describe():
        print(f"\n{t['botType']} (limit {t['limit']}, default bot {t['defaultBot']})")
        for name, doc in t["docs"].items():
            print(f"  {name}: {doc['summary'] or '(no header)'}")
            payload = doc["payload"] or "(not documented)"
            if "\n" in payload:  # a field table: keep its columns
                print("      payload:\n" + textwrap.indent(payload, " " * 8))
            else:
                print(f"      payload: {payload}")
    return 0


def cmd_invoke(args, settings: Settings) -> int:
    from .client import invoke

    payload = _json_arg(args.payload, "--payload")
    return asyncio.run(invoke(args, payload))


def cmd_stats(args, settings: Settings) -> int:
    from .client import stats

    return asyncio.run(stats(args))


COMMANDS = {
    "serve": cmd_serve,
    "mock-webhook": cmd_mock_webhook,
    "run-bot": cmd_run_bot,
    "bots": cmd_bots,
    "invoke": cmd_invoke,
    "stats": cmd_stats,
}
