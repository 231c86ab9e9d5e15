"""``surgedesk serve --gateways N``: several gateway processes serving one port.

Who runs this: the ``surgedesk serve`` process, as the gateways' supervisor; it serves no call
itself.

Each gateway is a ``surgedesk serve --member`` process with in-process hosting: its own ticket
and agent actors (``shared``: a change is fenced by the version its append names and decided
again when stale; a read checks the journal first) and its own copy of the dispatcher following the one routing
log (``replica``: it delivers the decisions its own entries caused). All of them bind the same
port (gRPC sets ``SO_REUSEPORT``; the kernel spreads new connections over them), so any gateway
serves any call and a client whose calls reach different gateways sees one desk. They share the
Redis the supervisor names (the embedded one it starts, unless ``REDIS_URL`` is set) and the
token secret in the data directory (made once, here, before they start).

The supervisor starts a gateway again when it dies (a crash, a ``kill -9``): its clients'
calls meanwhile reach the others (UNAVAILABLE is retried by the published retry policy). On
SIGHUP it restarts the gateways one by one (a rolling restart: each drained, then started
again and serving before the next is drained; the others serve meanwhile). On SIGTERM or SIGINT
it passes SIGTERM to every gateway, which drains (health NOT_SERVING, new calls refused, calls
in flight finished), waits for them, then stops Redis. Gateway ``i``'s metrics are on
``--metrics-port`` + ``i`` (each its own with 0).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from surgedesk.engine.errors import InvalidArgument

RESTART_PAUSE_S = 0.5  # between a gateway's death and its restart


def member_argv(args: Any, port: int, index: int) -> list[str]:
    """The command line of gateway ``index``: ``serve --member`` with the options that apply
    to a gateway."""
    argv = [sys.executable, "-m", "surgedesk", "serve", "--member", "--hosting", "in-process",
            "--host", args.host, "--port", str(port), "--data-dir", str(args.data_dir),
            "--tick-s", str(args.tick_s), "--drain-grace-s", str(args.drain_grace_s),
            "--event-loop", args.event_loop, "--time-scale", str(args.time_scale),
            "--estimate-scale", str(args.estimate_scale),
            "--reconcile-s", str(args.reconcile_s), "--metrics-host", args.metrics_host,
            "--metrics-port", str(args.metrics_port + index if args.metrics_port else 0)]
    for flag, value in (("--config", args.config), ("--secret-file", args.secret_file),
                        ("--archive-url", args.archive_url),
                        ("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key),
                        ("--tls-client-ca", args.tls_client_ca)):
        if value:
            argv += [flag, str(value)]
    if args.no_reflection:
        argv.append("--no-reflection")
    return argv


def shared_port(host: str, port: int) -> int:
    """``port``, or for 0 a free port every gateway can bind (with ``SO_REUSEPORT``)."""
    if port:
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class GatewayProcess:
    """One gateway process: started, watched, drained, started again."""

    def __init__(self, index: int, argv: list[str], env: dict[str, str]) -> None:
        self.index, self.argv, self.env = index, argv, env
        self.process: subprocess.Popen[str] | None = None
        self.starts = 0

    def start(self, out: TextIO) -> str:
        """Start the process; return its first line (``surgedesk serving on ...``) once it
        serves, and copy the rest of its output to ``out``."""
        self.process = subprocess.Popen(self.argv, env=self.env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        self.starts += 1
        assert self.process.stdout is not None
        first = self.process.stdout.readline()
        if "serving on" not in first:
            rest = self.process.stdout.read() if self.process.poll() is not None else ""
            raise RuntimeError(f"gateway {self.index} did not start: {first}{rest}")
        threading.Thread(target=_copy, args=(self.process.stdout, out, self.index),
                         daemon=True).start()
        return first.strip()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def drain(self, timeout_s: float) -> None:
        """SIGTERM (the gateway drains and exits); killed if it has not exited in time."""
        if self.process is None:
            return
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _copy(source: TextIO, out: TextIO, index: int) -> None:
    for line in source:
        out.write(f"[gateway {index}] {line}")
        out.flush()


def supervise(args: Any) -> int:
    """Run ``args.gateways`` gateways on one port until SIGTERM or SIGINT."""
    from surgedesk.adapters.identity.secret_store import load_secret
    from surgedesk.adapters.redis.embedded import EmbeddedRedis

    if not 1 <= args.gateways <= 64:
        raise InvalidArgument("gateways", "must be in 1..64")
    load_secret(args.data_dir, args.secret_file)  # made once, before the gateways read it
    env = {**os.environ}
    embedded = None
    if not env.get("REDIS_URL"):
        embedded = EmbeddedRedis(Path(args.data_dir) / "redis",
                                 appendfsync=args.redis_fsync).start()
        env["REDIS_URL"] = embedded.url
    port = shared_port(args.host, args.port)
    gateways = [GatewayProcess(i, member_argv(args, port, i), env)
                for i in range(args.gateways)]
    stopping: list[int] = []  # the signals received (a handler only appends: no lock taken)
    restarts: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: stopping.append(signum))
    signal.signal(signal.SIGHUP, lambda signum, _frame: restarts.append(signum))
    try:
        for gateway in gateways:
            print(f"[gateway {gateway.index}] {gateway.start(sys.stdout)}", flush=True)
        pids = ", ".join(str(g.process.pid) for g in gateways if g.process is not None)
        print(f"surgedesk serving on {args.host}:{port} ({args.gateways} gateways, pids "
              f"{pids}; redis {'embedded' if embedded else env['REDIS_URL']})", flush=True)
        while not stopping:
            time.sleep(0.2)
            if restarts:
                restarts.clear()
                rolling_restart(gateways, args.drain_grace_s + 20, stopping)
            for gateway in gateways:
                if not gateway.alive() and not stopping:
                    code = gateway.process.returncode if gateway.process else None
                    print(f"surgedesk: gateway {gateway.index} exited ({code}); starting it "
                          "again", flush=True)
                    time.sleep(RESTART_PAUSE_S)
                    with contextlib.suppress(RuntimeError):  # tried again on the next turn
                        line = gateway.start(sys.stdout)
                        pid = gateway.process.pid if gateway.process else 0
                        print(f"surgedesk: gateway {gateway.index} is back (pid {pid}): "
                              f"{line}", flush=True)
    finally:
        for gateway in gateways:
            if gateway.alive() and gateway.process is not None:
                gateway.process.send_signal(signal.SIGTERM)
        for gateway in gateways:
            gateway.drain(args.drain_grace_s + 20)
        if embedded is not None:
            embedded.stop()
    return 0


def rolling_restart(gateways: list[GatewayProcess], drain_timeout_s: float,
                    stopping: list[int]) -> None:
    """Each gateway in turn drained and started again, serving before the next is drained;
    the others serve meanwhile. Stops early when the supervisor is told to stop."""
    print(f"surgedesk: rolling restart of {len(gateways)} gateways", flush=True)
    for gateway in gateways:
        if stopping:
            return
        gateway.drain(drain_timeout_s)
        for attempt in range(5):
            try:
                line = gateway.start(sys.stdout)
                break
            except RuntimeError as exc:
                print(f"surgedesk: gateway {gateway.index} did not start ({exc}); "
                      f"trying again", flush=True)
                time.sleep(RESTART_PAUSE_S * (attempt + 1))
        else:
            continue  # the supervisor's loop keeps trying
        pid = gateway.process.pid if gateway.process else 0
        print(f"surgedesk: gateway {gateway.index} restarted (pid {pid}): {line}", flush=True)
    print("surgedesk: rolling restart done", flush=True)
