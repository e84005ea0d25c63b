"""Watching the fleet: per-unit state on the server, sender health reports, and the HTTP status endpoints."""
