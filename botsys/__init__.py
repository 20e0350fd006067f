"""botsys: run Python, Node.js and Java bots on demand over HTTP."""

__version__ = "0.1.0"
