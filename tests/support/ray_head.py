"""A Ray cluster started with ``ray start --head``, as an operator starts one, and stopped again.

Every port is picked free at run time and the cluster keeps its files in its own temporary
folder. Stopping it ends exactly its processes (its process group, then anything else whose
command line names its folder), never another cluster on the machine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class HeadCluster:
    """How to reach the cluster: ``address`` for ``--address``, ``env`` for its clients."""

    address: str
    env: dict[str, str]
    temp_dir: Path


def _ray_cli() -> str:
    return str(Path(sys.executable).with_name("ray"))


def _processes_naming(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found


def _stop(process: subprocess.Popen[bytes], temp_dir: Path) -> None:
    """SIGTERM to the cluster's process group, SIGKILL if it lingers, then its stragglers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=10)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    # Workers name the cluster's folder on their command line, whatever their process group.
    for pid in _processes_naming(str(temp_dir)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@contextmanager
def head_cluster(num_cpus: int = 2, timeout_s: float = 90.0) -> Iterator[HeadCluster]:
    """``ray start --head --block`` on free ports without authentication, for the block."""
    # Short: Ray's socket paths under it must stay below the 107-byte limit of a Unix socket.
    temp_dir = Path(tempfile.mkdtemp(prefix="tg-ray-", dir="/tmp"))
    port = free_port()
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "disabled",
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p
        ),
    }
    env.pop("RAY_ADDRESS", None)
    command = [
        _ray_cli(),
        "start",
        "--head",
        "--block",
        f"--port={port}",
        f"--num-cpus={num_cpus}",
        "--include-dashboard=false",
        f"--dashboard-port={free_port()}",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--ray-client-server-port={free_port()}",
        f"--temp-dir={temp_dir}",
        "--disable-usage-stats",
    ]
    log = (temp_dir / "ray-start.log").open("wb")
    process = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    cluster = HeadCluster(address=f"127.0.0.1:{port}", env=env, temp_dir=temp_dir)
    try:
        _wait_until_up(process, cluster, timeout_s)
        yield cluster
    finally:
        _stop(process, temp_dir)
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)


def _wait_until_up(
    process: subprocess.Popen[bytes], cluster: HeadCluster, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            text = (cluster.temp_dir / "ray-start.log").read_text(errors="replace")
            raise RuntimeError(f"ray start exited with {process.returncode}:\n{text}")
        if list(cluster.temp_dir.glob("session_*/sockets/raylet")):
            probe = subprocess.run(
                [_ray_cli(), "status", f"--address={cluster.address}"],
                env=cluster.env,
                capture_output=True,
                timeout=60,
            )
            if probe.returncode == 0:
                return
        time.sleep(0.5)
    raise RuntimeError(f"ray start --head did not come up within {timeout_s:g} s")
