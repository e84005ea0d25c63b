"""A unit that stops delivering is logged once when it falls silent and once when it is back; stalls too."""

from __future__ import annotations

import json
import re

from harness import Client, fleet_unit, free_port, reading, wait_for


def status_line(**fields) -> bytes:
    return json.dumps({"status": 1, **fields}).encode() + b"\n"


def test_silent_then_back_one_line_each(server_factory) -> None:
    http = free_port()
    server = server_factory(http_port=http, silent_after=1)
    client = Client(server.port, acks=True, sh_id="rpi03", status=True)
    client.send_raw(status_line(backlog=1200))
    client.send(reading("rpi03", 0, time="2026-11-25T12:00:01.234567Z"))
    client.wait_ack(1)
    pattern = (r"WARNING whc\.fleet: rpi03 silent for [12] s; last reading 2026-11-25T12:00:01\.2Z from 127\.0\.0\.1; "
               r"backlog 1200 at its last report\n")  # (checked once a second: 1 s, or 2 s on a busy machine)
    wait_for(lambda: re.search(pattern, server.log_text()), what="the silent warning")
    unit = wait_for(lambda: (u := fleet_unit(http, "rpi03")) and u["silent"] and u, what="a snapshot with it silent")
    assert unit["connected"] and unit["state"] == "red" and unit["state_reason"] == "silent"
    client.send(reading("rpi03", 1))
    client.wait_ack(2)
    back = wait_for(lambda: re.findall(r"rpi03 back after (\d+) s\n", server.log_text()), what="the back line")
    assert back == [back[0]] and int(back[0]) >= 1
    assert len(re.findall(pattern, server.log_text())) == 1, "one warning per silence"
    client.close()


def test_connected_backlog_growing_nothing_stored_is_stalled(server_factory) -> None:
    http = free_port()
    server = server_factory(http_port=http)
    client = Client(server.port, acks=True, sh_id="rpi04", status=True)
    client.send(reading("rpi04", 0))
    client.wait_ack(1)
    client.send_raw(status_line(backlog=10))
    wait_for(lambda: (fleet_unit(http, "rpi04")["sender"] or {}).get("backlog") == 10, what="the first report")
    client.send_raw(status_line(backlog=25))  # (reports are stats_interval apart; the newest of a burst counts)
    wait_for(lambda: "rpi04 stalled: connected from 127.0.0.1, backlog 10 -> 25" in server.log_text(),
             what="the stall warning")
    unit = wait_for(lambda: (u := fleet_unit(http, "rpi04")) and u["stalled"] and u, what="a snapshot with the stall")
    assert unit["state"] == "amber"
    client.send(reading("rpi04", 1))
    client.wait_ack(2)
    wait_for(lambda: "rpi04 no longer stalled: readings arrive again" in server.log_text(), what="the stall end")
    wait_for(lambda: not fleet_unit(http, "rpi04")["stalled"], what="a snapshot without the stall")
    client.close()


def test_a_quiet_unit_goes_amber_then_red(server_factory) -> None:
    http = free_port()
    server = server_factory(http_port=http, silent_after=3)
    client = Client(server.port, acks=True, sh_id="rpi05")
    client.send(reading("rpi05", 0))
    client.wait_ack(1)
    seen = []

    def state() -> str:
        unit = fleet_unit(http, "rpi05")
        if not seen or seen[-1] != unit["state"]:
            seen.append(unit["state"])
        return unit["state"] == "red" and unit["state_reason"] == "silent"

    wait_for(state, 10, interval=0.1, what="red after silent_after")
    assert seen[-2:] == ["amber", "red"], f"late (a third of silent_after) comes first: {seen}"
    client.close()
