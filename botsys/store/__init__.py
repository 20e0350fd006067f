"""Redis storage: connection, key names and the Lua scripts. Nothing here knows about HTTP."""
