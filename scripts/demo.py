"""Run the server and emulated senders on loopback for a while, then show what landed in the CSV.

Everything lives in ./demo (recreated each run): one folder for the server and one per
sender, each with its own server.json, as on real machines.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from whc.serving.listener import free_port  # noqa: E402


def start(script: str, config: Path, *extra: str) -> subprocess.Popen:
    log = open(config.parent / (Path(script).stem + ".out"), "w")
    return subprocess.Popen([sys.executable, str(ROOT / script), "--config", str(config), *extra],
                            stdout=log, stderr=subprocess.STDOUT, cwd=config.parent)


def wait_listening(port: int, proc: subprocess.Popen, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}; see demo/server/launch_server.out")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the server did not start listening")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20, help="how long the senders run (default 20)")
    parser.add_argument("--senders", type=int, default=2, help="emulated Pis (default 2)")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between readings (default 0.05)")
    args = parser.parse_args()
    demo = ROOT / "demo"
    shutil.rmtree(demo, ignore_errors=True)
    port = free_port()
    server_dir = demo / "server"
    server_dir.mkdir(parents=True)
    (server_dir / "server.json").write_text(json.dumps({"ip": "127.0.0.1", "port": port}, indent=2))
    server = start("launch_server.py", server_dir / "server.json")
    wait_listening(port, server)
    print(f"server listening on 127.0.0.1 port {port}; starting {args.senders} emulated senders for "
          f"{args.seconds:g} s...", flush=True)
    senders = []
    for number in range(1, args.senders + 1):
        folder = demo / f"rpi{number:02d}"
        folder.mkdir()
        settings = {"ip": "127.0.0.1", "port": port, "unit": f"rpi{number:02d}", "backend": "emulator",
                    "interval": args.interval, "sensors": ["orientation", "gyroscope", "accelerometer", "environment"]}
        (folder / "server.json").write_text(json.dumps(settings, indent=2))
        senders.append(start("launch_sender.py", folder / "server.json"))
    time.sleep(args.seconds)
    for proc in senders:
        proc.send_signal(signal.SIGTERM)
    codes = [proc.wait(30) for proc in senders]
    server.send_signal(signal.SIGTERM)
    codes.append(server.wait(30))
    csv_path = server_dir / "whc_data.csv"
    with open(csv_path, newline="") as file:
        rows = list(csv.DictReader(file))
    per_unit = Counter(row["sh_id"] for row in rows)
    counts = ", ".join(f"{unit}: {n}" for unit, n in sorted(per_unit.items()))
    print(f"\n{len(rows)} readings in {csv_path} ({counts})")
    print("first rows:")
    with open(csv_path) as file:
        for _ in range(4):
            print("  " + file.readline().rstrip())
    print("logs: demo/server/launch_server.out, demo/rpi*/launch_sender.out")
    print(f"summary and plots: {sys.executable} report.py {csv_path}")
    if any(codes) or not rows:
        print(f"something went wrong (exit codes {codes}); see the logs above", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
