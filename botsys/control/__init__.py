"""The control plane: bot types managed at runtime (definitions, store, catalog, watcher)."""
