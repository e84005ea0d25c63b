"""Serving: the aggregator's event loop (``server``) and per-connection protocol handling (``handler``)."""
