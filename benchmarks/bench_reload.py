"""How long from writing ``saml-gate.toml`` to the last ``--workers`` process applying it.

    python benchmarks/bench_reload.py [--workers 3] [--writes 20] [--redis redis://127.0.0.1:6379/0]

Starts ``saml-gate run --workers N`` (the development IdP, a Redis store) on a file, then
rewrites the file N times (alternating two policies), each time waiting until every worker has
logged ``access policy reloaded``; the time from the write to the last such line is the
latency. Each worker looks at the file every second, so expect about 0.5 s on average for the
first and up to about a second for the last. Prints the median and the maximum.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

POLICIES = ('public_paths = ["/static/"]\n', 'public_paths = ["/static/", "/open/"]\n')
LINE = "access policy reloaded"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--writes", type=int, default=20)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-reload-"))
    config = folder / "saml-gate.toml"
    head = f'store = "{args.redis}"\nstore_prefix = "bench-reload:{os.getpid()}:"\n'
    config.write_text(head + POLICIES[0])
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = folder / "server.log"
    command = [sys.executable, "-m", "saml_gate.cli", "run", "tests.test_policy_reload:pid_app"]
    command += ["--workers", str(args.workers), "--port", str(port), "--config", str(config)]
    command += ["--dev-idp", "--base-url", f"http://127.0.0.1:{port}"]
    command += ["--state-dir", str(folder / "state")]
    env = {**os.environ, "SAML_GATE_SECRET_KEY": "bench-" + "s" * 40}
    root = Path(__file__).resolve().parent.parent
    with log.open("wb") as out:
        server = subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait(log, "Application startup complete", args.workers, server)
        latencies = []
        pace = random.Random(25)
        for n in range(1, args.writes + 1):
            time.sleep(pace.uniform(0.0, 1.0))  # not in step with the workers' polls
            started = time.perf_counter()
            config.write_text(head + POLICIES[n % 2])
            wait(log, LINE, n * args.workers, server)
            latencies.append(time.perf_counter() - started)
        print(
            f"{args.writes} writes, {args.workers} workers: write → last worker applying it:"
            f" median {statistics.median(latencies) * 1000:.0f} ms,"
            f" max {max(latencies) * 1000:.0f} ms,"
            f" min {min(latencies) * 1000:.0f} ms"
        )
    finally:
        server.terminate()
        server.wait(timeout=30)


def wait(log: Path, text: str, count: int, server: subprocess.Popen[bytes]) -> None:
    """Until ``text`` has been logged ``count`` times (read every 2 ms)."""
    deadline = time.monotonic() + 60
    while log.read_text(errors="replace").count(text) < count:
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {count} x {text!r}:\n{log.read_text()}")
        time.sleep(0.002)


if __name__ == "__main__":
    main()
