"""The server's own open-files limit: raised to what ``max_connections`` needs, where the system allows."""

from __future__ import annotations

import resource

SPARE_FILES = 64  # listener, wake-up pair, CSV, rejects log, state file, log file, std streams, imports


def raise_open_files(max_connections: int) -> str | None:
    """Raise RLIMIT_NOFILE's soft limit towards its hard limit; a one-line warning if it cannot cover the connections.

    Only the soft limit is raised, and only as far as needed (at most to the hard limit); None when it covers
    ``max_connections`` plus the server's own files.
    """
    needed = max_connections + SPARE_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return None
    return (f"open-files limit is {soft} (hard limit {hard}), too low for max_connections {max_connections} "
            f"plus {SPARE_FILES} of the server's own: raise it (ulimit -n, or LimitNOFILE= in the systemd unit) "
            f"or lower max_connections to {max(1, soft - SPARE_FILES)}")
