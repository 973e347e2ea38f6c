"""Real server processes for the tests: started on free loopback ports, stopped by handle."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

HOST = "127.0.0.1"


@functools.cache
def _scratch_root() -> Path:
    """One folder per test run for server files, removed when the run ends."""
    root = Path(tempfile.mkdtemp(prefix="sessionware-servers-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _apt_install(package: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package]
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=False)
        subprocess.run(install, env=env, capture_output=True, check=False)


def require_binary(
    name: str, package: str, *, find: Callable[[str], str | None] = shutil.which
) -> str:
    """The path of a server binary, installing its Debian package first when we are root.

    `find` looks for it (PATH by default; some packages keep their programs elsewhere).
    Missing it, the test skips with the reason, except under CI=true, where it fails.
    """
    path = find(name)
    if path is None and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        _apt_install(package)
        path = find(name)
    if path is None:
        reason = f"{name} is not installed (apt-get install {package})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must have every server", pytrace=False)
        pytest.skip(reason)
    return path


def wait_for_port(port: int, host: str = HOST, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s") from None
            time.sleep(0.02)


def wait_for_http(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Until `url` answers (any status); a server process that exits first fails the test
    with its output."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            raise AssertionError(f"the server exited:\n{output}")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer")


class ServerProcess:
    """One server process on one port, which a test can stop, restart, pause and resume."""

    def __init__(self, name: str, argv: Sequence[str], port: int, workdir: Path | None = None):
        self.name = name
        self.argv = list(argv)
        self.host = HOST
        self.port = port
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix=f"{name}-", dir=_scratch_root()))
        self.log_path = self.workdir / f"{name}-{port}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            self.argv, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.stop()
            raise RuntimeError(
                f"{self.name} did not start: {self.log_path.read_text(errors='replace')[-2000:]}"
            ) from None

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGCONT)
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def pause(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)
