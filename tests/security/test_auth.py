"""Shared token and TLS with client certificates, against a real server process."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import struct
import subprocess
from pathlib import Path

import pytest
from harness import ROOT, Client, reading, wait_for

TOKEN = "s3cret-token-value"


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and client certificates for rpi01 and rpi02 (README steps)."""
    folder = tmp_path_factory.mktemp("certs")
    subprocess.run(["bash", str(ROOT / "scripts" / "make_certs.sh"), str(folder), "127.0.0.1", "rpi01", "rpi02"],
                   check=True, capture_output=True, timeout=60)
    return folder


def client_tls(certs: Path, unit: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=certs / "ca.crt")
    if unit is not None:
        context.load_cert_chain(certs / f"{unit}.crt", certs / f"{unit}.key")
    return context


def closed(client: Client) -> bool:
    try:
        client.sock.settimeout(5)
        while client.read() is not None:
            pass
        return True
    except (ConnectionError, ssl.SSLError):
        return True


def test_token_required_right_token_is_served(server_factory) -> None:
    server = server_factory(token=TOKEN)
    client = Client(server.port, acks=True, sh_id="rpi01", token=TOKEN)
    client.send(reading(seq=0))
    client.wait_ack(1)
    assert [r["seq"] for r in server.rows()] == ["0"]


@pytest.mark.parametrize("hello", [{"token": "bad-guess-123"}, {}, {"token": TOKEN[:-1]}])
def test_wrong_or_missing_token_closes_and_writes_nothing(server_factory, hello) -> None:
    server = server_factory(token=TOKEN)
    client = Client(server.port, acks=False, **hello) if hello else Client(server.port)
    client.send(reading(sh_id="intruder"))
    if hello:
        assert client.read() == {"error": "authentication failed", "line": 0}
    assert closed(client)
    wait_for(lambda: "refused 127.0.0.1" in server.log_text(), what="the refusal in the log")
    assert server.rows() == [] and server.rejects() == [], "nothing of it is written, not even to the rejects log"
    assert TOKEN[:-1] not in server.log_text() and "bad-guess" not in server.log_text(), "tokens are never logged"


def test_token_from_file_and_never_printed_by_check_config(server_factory, tmp_path) -> None:
    (tmp_path / "token").write_text(TOKEN + "\n")
    server = server_factory(token_file="token")
    result = subprocess.run(["python3", str(ROOT / "launch_server.py"), "--config", str(server.config_path),
                             "--check-config"], capture_output=True, text=True, timeout=30)
    assert TOKEN not in result.stdout
    client = Client(server.port, acks=True, token=TOKEN)
    client.send(reading(seq=0))
    client.wait_ack(1)


def tls_server(server_factory, certs: Path, **extra):
    return server_factory(tls_cert_file=str(certs / "server.crt"), tls_key_file=str(certs / "server.key"),
                          tls_client_ca_file=str(certs / "ca.crt"), **extra)


def test_mutual_tls_serves_a_pi_with_its_certificate(server_factory, certs) -> None:
    server = tls_server(server_factory, certs, tls_match_sh_id=True, token=TOKEN)
    assert "TLS, client certificates, sh_id must match the certificate, token" in server.log_text()
    client = Client(server.port, acks=True, tls=client_tls(certs, "rpi01"), sh_id="rpi01", token=TOKEN)
    client.send(*(reading(sh_id="rpi01", seq=i) for i in range(100)))
    client.wait_ack(100)
    assert len(server.rows()) == 100


def test_reading_for_another_unit_ends_the_connection_and_is_not_written(server_factory, certs) -> None:
    server = tls_server(server_factory, certs, tls_match_sh_id=True)
    client = Client(server.port, acks=True, tls=client_tls(certs, "rpi01"))
    client.send(reading(sh_id="rpi01", seq=0))
    client.wait_ack(1)
    client.send(reading(sh_id="rpi02", seq=0))
    client.sock.settimeout(5)
    assert client.read() == {"error": "sh_id does not match the client certificate", "line": 2}, \
        "a client that asked for acks is told why, so a misconfigured Pi says so in its own log"
    assert closed(client)
    wait_for(lambda: "does not match the client certificate" in server.log_text(), what="the refusal logged")
    assert [r["sh_id"] for r in server.rows()] == ["rpi01"]


def test_client_without_certificate_or_speaking_plain_tcp_is_refused(server_factory, certs) -> None:
    server = tls_server(server_factory, certs)
    try:
        no_cert = Client(server.port, acks=True, tls=client_tls(certs, None))
        no_cert.send(reading(seq=0))
        assert closed(no_cert)
    except (ssl.SSLError, ConnectionError):
        pass  # TLS 1.3 may report the missing certificate at the first read or write instead
    plain = Client(server.port)
    plain.send(reading(seq=0))
    assert closed(plain)
    wait_for(lambda: server.log_text().count("TLS handshake failed") >= 1, what="handshake failures logged")
    honest = Client(server.port, acks=True, tls=client_tls(certs, "rpi02"))
    honest.send(reading(sh_id="rpi02", seq=0))
    honest.wait_ack(1)
    assert [r["sh_id"] for r in server.rows()] == ["rpi02"]


def test_sender_over_tls_with_token(server_factory, sender_factory, certs, tmp_path) -> None:
    server = tls_server(server_factory, certs, tls_match_sh_id=True, token=TOKEN, unit="rpi01", interval=0.02,
                        tls_ca_file=str(certs / "ca.crt"), tls_client_cert_file=str(certs / "rpi01.crt"),
                        tls_client_key_file=str(certs / "rpi01.key"))
    sender = sender_factory(server.config_path).start()
    wait_for(lambda: len(server.rows()) >= 20, 20, what="readings over TLS")
    assert sender.stop() == 0
    assert {r["sh_id"] for r in server.rows()} == {"rpi01"}
    assert "refused" not in server.log_text()


def test_bad_tls_files_fail_at_start(tmp_path, certs) -> None:
    config = tmp_path / "server.json"
    config.write_text(json.dumps({"ip": "127.0.0.1", "port": 9, "tls_cert_file": str(certs / "server.crt"),
                                  "tls_key_file": str(certs / "rpi01.key")}))
    result = subprocess.run(["python3", str(ROOT / "launch_server.py"), "--config", str(config)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "cannot load" in result.stderr


def test_clients_resetting_before_the_handshake_do_not_stop_a_tls_server(server_factory, certs) -> None:
    """Found in review: wrap_socket raised on an already-reset socket and killed the server."""

    server = tls_server(server_factory, certs)
    for index in range(300):
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
        if index % 2:
            sock.sendall(b"\x16\x03\x01")
        sock.close()
    assert server.proc.poll() is None
    honest = Client(server.port, acks=True, tls=client_tls(certs, "rpi01"))
    honest.send(reading(sh_id="rpi01", seq=0))
    honest.wait_ack(1)



@pytest.mark.parametrize("ending", ["reset", "damaged record, then reset"])
def test_lines_received_before_a_failing_read_are_stored(server_factory, certs, ending) -> None:
    """Found in review: a recv failing after the first TLS record threw away the records already read."""

    server = tls_server(server_factory, certs)
    client = Client(server.port, tls=client_tls(certs, "rpi01"))  # fire and forget: no hello, no acks
    server.proc.send_signal(signal.SIGSTOP)  # so everything below is waiting when the server reads again
    try:
        for seq in range(3):
            client.send(reading(sh_id="rpi01", seq=seq))  # one TLS record each
        if ending != "reset":  # an application-data record that fails its integrity check
            os.write(client.sock.fileno(), b"\x17\x03\x03\x00\x20" + b"\x5a" * 32)
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
        client.close()
    finally:
        server.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: len(server.rows()) >= 3, what="the three lines stored")
    assert sorted(int(r["seq"]) for r in server.rows()) == [0, 1, 2]
    assert server.proc.poll() is None


def test_a_close_notify_that_comes_with_the_last_lines_ends_the_connection(server_factory, certs) -> None:
    """Noticed in review: a TLS client's close_notify read together with its last records (TCP kept open)
    was missed, and the connection waited for idle_timeout (900 s) before it closed."""

    server = tls_server(server_factory, certs)
    client = Client(server.port, acks=True, tls=client_tls(certs, "rpi01"), sh_id="rpi01")
    client.send(reading(sh_id="rpi01", seq=0))
    client.wait_ack(1)
    server.proc.send_signal(signal.SIGSTOP)  # so that the lines and the close_notify wait to be read together
    try:
        client.send(*(reading(sh_id="rpi01", seq=seq) for seq in range(1, 4)))
        client.sock.setblocking(False)
        with contextlib.suppress(ssl.SSLWantReadError):
            client.sock.unwrap()  # sends close_notify; TCP stays open
    finally:
        server.proc.send_signal(signal.SIGCONT)
    client.sock.settimeout(30)  # the server answers and closes long before idle_timeout, or a read times out
    client.wait_ack(4, timeout=30)
    assert client.read() is None, "the server's end follows the last ack"
    client.sock.close()
    assert sorted(int(r["seq"]) for r in server.rows()) == [0, 1, 2, 3]
