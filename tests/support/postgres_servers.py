"""Fixtures for real PostgreSQL servers: a cluster of the run's own, never the machine's.

Debian keeps the server programs out of PATH, in /usr/lib/postgresql/<version>/bin, and
PostgreSQL refuses to run as root. So as root the cluster belongs to the `postgres` system
user that Debian's package creates: its folder (data and socket) is handed to that user, and
`initdb` and `postgres` run under it. The server listens on a free loopback port and on a
socket folder of the run, trusts every local connection, and is stopped by its process
handle with a fast shutdown (SIGINT), which ends the clients' connections instead of
waiting for them as SIGTERM's smart shutdown would.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .processes import HOST, ServerProcess, _scratch_root, free_port, require_binary

#: The system user a cluster runs as when the tests run as root (Debian creates it).
SERVER_USER = "postgres"
#: The superuser that `initdb` creates, and the database every cluster starts with.
SUPERUSER = "postgres"
DATABASE = "postgres"

# Durability is not under test here: a clean shutdown still writes everything out.
_SETTINGS = {
    "listen_addresses": HOST,
    "fsync": "off",
    "full_page_writes": "off",
    "max_connections": "300",
}


def _newest_binary(name: str) -> str | None:
    """`name` from the newest /usr/lib/postgresql/<version>/bin, else from PATH."""
    found = glob.glob(f"/usr/lib/postgresql/*/bin/{name}")
    if found:
        return max(found, key=lambda path: int(Path(path).parts[-3].split(".")[0]))
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def _server_account() -> pwd.struct_passwd | None:
    """Who runs the server: `postgres` when we are root, else nobody but ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        reason = (
            f"PostgreSQL will not run as root and there is no {SERVER_USER!r} user to run it "
            "(apt-get install postgresql creates one)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


def _as_account(account: pwd.struct_passwd | None) -> dict[str, Any]:
    """Popen arguments that run a child as `account` (and with none of root's groups)."""
    if account is None:
        return {}
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


class PostgresServer(ServerProcess):
    """A cluster in a folder of its own; `start`/`stop`/`restart` keep its data."""

    def __init__(self, port: int, workdir: Path, account: pwd.struct_passwd | None) -> None:
        super().__init__("postgres", [], port, workdir)
        self.account = account
        self.data = workdir / "data"
        self.sockets = workdir / "socket"
        binary = require_binary("postgres", "postgresql", find=_newest_binary)
        settings = {**_SETTINGS, "unix_socket_directories": str(self.sockets)}
        self.argv = [binary, "-D", str(self.data), "-p", str(port)]
        for name, value in settings.items():
            self.argv += ["-c", f"{name}={value}"]

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{DATABASE}"

    def options(self, **extra: Any) -> dict[str, Any]:
        """The storage options that reach this server."""
        return {"url": self.url, **extra}

    def start(self) -> None:
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            self.argv,
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            **_as_account(self.account),
        )
        log.close()
        try:
            self._wait_until_ready()
        except TimeoutError:
            self.stop()
            raise RuntimeError(
                f"postgres did not start: {self.log_path.read_text(errors='replace')[-2000:]}"
            ) from None

    def _wait_until_ready(self, timeout: float = 30.0) -> None:
        """Until the postmaster says "ready" in its pid file: an open port alone may still
        answer "the database system is starting up"."""
        pid_file = self.data / "postmaster.pid"
        deadline = time.monotonic() + timeout
        while True:
            try:
                lines = pid_file.read_text().splitlines()
            except OSError:
                lines = []
            if len(lines) >= 8 and lines[7].strip() == "ready":
                return
            if not self.running or time.monotonic() > deadline:
                raise TimeoutError(f"postgres on port {self.port} is not ready")
            time.sleep(0.02)

    def pause(self) -> None:
        """SIGSTOP the postmaster, then each of its processes: connections stay open and
        nothing answers. (Every backend leads a process group of its own, so one signal to
        the postmaster's group would not reach them.)"""
        assert self._process is not None
        self._signal_all(self._process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None
        self._signal_all(self._process.pid, signal.SIGCONT)

    @staticmethod
    def _signal_all(postmaster: int, signum: int) -> None:
        os.kill(postmaster, signum)
        for child in _children(postmaster):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    def stop(self) -> None:
        """Fast shutdown: clients are disconnected and the data written out."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self._signal_all(process.pid, signal.SIGCONT)
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGQUIT)  # immediate shutdown: ends every backend
            process.wait(timeout=10)


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid`, from /proc."""
    found = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            text = Path(stat).read_text()
        except OSError:
            continue  # ended meanwhile
        # pid (command) state ppid ...: the command may hold spaces and parentheses.
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append(int(stat.split("/")[2]))
    return found


def _owned_folder(account: pwd.struct_passwd | None) -> Path:
    """A folder of the run for one cluster, which the server's user owns and can reach."""
    root = _scratch_root()
    if account is not None:
        root.chmod(0o711)  # others may pass through the run's folder, not list it
    workdir = Path(tempfile.mkdtemp(prefix="postgres-", dir=root))
    (workdir / "socket").mkdir()
    if account is not None:
        for path in (workdir, workdir / "socket"):
            os.chown(path, account.pw_uid, account.pw_gid)
    return workdir


def start_postgres() -> PostgresServer:
    """initdb a new cluster (trust authentication, UTF-8, C locale) and start it."""
    initdb = require_binary("initdb", "postgresql", find=_newest_binary)
    account = _server_account()
    workdir = _owned_folder(account)
    server = PostgresServer(free_port(), workdir, account)
    done = subprocess.run(
        [
            initdb,
            "-D",
            str(server.data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **_as_account(account),
    )
    if done.returncode != 0:
        raise RuntimeError(f"initdb failed: {done.stdout}{done.stderr}")
    server.start()
    return server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One cluster for the whole run; tests keep apart by table."""
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()
