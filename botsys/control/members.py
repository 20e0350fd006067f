"""Whether a group member (``type`` or ``type/bot``) can run now: the seam between groups and
whatever defines bot types (configuration and the bots folder today)."""

from __future__ import annotations

from collections.abc import Callable

from ..runners.registry import BotRegistry, UnknownBot


def split_member(member: str) -> tuple[str, str | None]:
    bot_type, _, bot = member.partition("/")
    return bot_type, bot or None


def registry_member_check(registry: BotRegistry) -> Callable[[str], str | None]:
    def problem(member: str) -> str | None:
        bot_type, bot = split_member(member)
        try:
            registry.resolve(bot_type, bot)
        except UnknownBot as exc:
            return str(exc)
        return None

    return problem
