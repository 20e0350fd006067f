"""Webhook delivery: Standard Webhooks signing, SSRF guard, retry policy, sender, dispatcher.

Import ``verify`` / ``sign`` from here; the other modules are imported where they are wired.
"""

from botsys.webhooks.signing import WebhookVerificationError, sign, verify

__all__ = ["WebhookVerificationError", "sign", "verify"]
