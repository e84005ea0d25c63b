"""Our sender reports its health over the protocol; the server shows it and the acks stay exact."""

from __future__ import annotations

from collections import Counter

from harness import fleet_unit, free_port, wait_for


def test_sender_status_reaches_the_server_and_never_shifts_acks(server_factory, sender_factory) -> None:
    http = free_port()
    server = server_factory(unit="rpi01", interval=0.02, stats_interval=1, http_port=http)
    sender = sender_factory(server.config_path).start()

    def reported() -> dict | None:
        unit = fleet_unit(http, "rpi01")
        return unit if unit and unit["sender"] and unit["sender"]["uptime"] >= 1 and unit["readings_total"] else None

    unit = wait_for(reported, 20, interval=0.2, what="a second status report")
    health = unit["sender"]
    assert 5 < health["rate"] < 60, "about 50 readings/s at interval 0.02"
    assert health["dropped"] == 0 and health["imu_failures"] == 0 and health["backlog"] >= 0
    assert isinstance(health["spooled_bytes"], int)
    assert health["imu_samples"] > 30, "the IMU reader's own count (about 60 samples/s on the emulator)"
    assert isinstance(health["clock_synced"], bool), "adjtimex answers on Linux"
    assert unit["connected"] and unit["state"] == "green" and unit["address"] == "127.0.0.1"
    assert abs(unit["clock_offset_seconds"]) < 1, "same machine, same clock"
    assert sender.stop() == 0
    rows = server.rows()
    seqs = Counter(int(r["seq"]) for r in rows)
    assert rows and max(seqs.values()) == 1 and set(seqs) == set(range(len(seqs))), "each reading once, in order"
    assert sender.spool_state()["acked"] == len(rows), "acks count readings only, not status lines"
