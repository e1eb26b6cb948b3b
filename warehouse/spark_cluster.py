"""A throw-away Spark standalone cluster on loopback: one master, N workers, started from the
`pyspark` package's own daemon script and stopped afterwards.

Why this way: tests and the demo need a real cluster (separate executor JVMs, shuffles over
the network), not `local[*]`, yet nothing may download at run time; the `pyspark` wheel ships
Spark's jars and `sbin/spark-daemon.sh`, which is what `start-master.sh` / `start-worker.sh`
call (the wheel leaves those two wrappers out). Each cluster gets its own log, pid and work
directories and free ports, so parallel test workers and other users of the machine do not
collide. Needs Java 17+ on PATH (or JAVA_HOME).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
HOST = "127.0.0.1"
# JVM start-up on a busy shared machine can take minutes; a dead daemon fails sooner (its log)
START_TIMEOUT = 300.0


class SparkClusterError(RuntimeError):
    """The cluster could not start (no Java, no pyspark, a daemon died): names the log."""


@dataclass(frozen=True)
class SparkCluster:
    """A running cluster: where to connect and where its files are."""

    master_url: str
    web_ui_port: int
    workers: int
    root: Path

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"


def spark_home() -> Path:
    """The installed pyspark package directory; it is a complete SPARK_HOME (jars, bin, sbin)."""
    try:
        import pyspark
    except ImportError as error:
        raise SparkClusterError(
            "pyspark is not installed; install the spark extra (make setup-spark)"
        ) from error
    return Path(pyspark.__file__).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _check_alive(log_dir: Path) -> None:
    """Fail at once, naming the log, when a daemon this cluster started has died."""
    for pid_file in (log_dir.parent / "pids").glob("*.pid"):
        if not _alive(int(pid_file.read_text())):
            raise SparkClusterError(f"Spark daemon {pid_file.stem} died; logs in {log_dir}")


def _wait_for_port(port: int, timeout: float, log_dir: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _check_alive(log_dir)
        with socket.socket() as sock:
            if sock.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.2)
    raise SparkClusterError(f"Spark master did not listen on {HOST}:{port}; logs in {log_dir}")


def _alive_workers(ui_port: int) -> int:
    url = f"http://{HOST}:{ui_port}/json/"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(json.load(response).get("aliveworkers", 0))
    except (OSError, ValueError):
        return 0


def _wait_for_workers(ui_port: int, workers: int, timeout: float, log_dir: Path) -> None:
    """The master's JSON status lists registered workers; a job submitted before they register
    would wait for resources instead of failing, so wait here where the error can name logs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _check_alive(log_dir)
        if _alive_workers(ui_port) >= workers:
            return
        time.sleep(0.5)
    raise SparkClusterError(f"{workers} Spark workers did not register; logs in {log_dir}")


def _daemon_env(root: Path, home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        SPARK_HOME=str(home),
        SPARK_LOG_DIR=str(root / "logs"),
        SPARK_PID_DIR=str(root / "pids"),
        SPARK_WORKER_DIR=str(root / "work"),
        SPARK_LOCAL_DIRS=str(root / "local"),
        SPARK_CONF_DIR=str(root / "conf"),
        SPARK_LOCAL_IP=HOST,
        SPARK_IDENT_STRING=f"books{os.getpid()}",
        # the daemons themselves are small; executors get their memory from the worker settings
        SPARK_DAEMON_MEMORY="256m",
        SPARK_NICENESS=os.environ.get("SPARK_NICENESS", "10"),
    )
    return env


def _daemon(env: dict[str, str], home: Path, *args: str) -> None:
    script = home / "sbin" / "spark-daemon.sh"
    result = subprocess.run(
        ["bash", str(script), *args], env=env, capture_output=True, text=True, check=False
    )
    # Not its "failed to launch": that is a fixed 7 s check, which a JVM still starting on a
    # busy machine fails; the port and worker-registration waits decide instead.
    if result.returncode != 0:
        raise SparkClusterError(
            f"spark-daemon.sh {' '.join(args[:3])} failed: {result.stdout.strip()[-500:]}"
            f" {result.stderr.strip()[-500:]}; logs in {env['SPARK_LOG_DIR']}"
        )


def _check_java() -> None:
    java_home = os.environ.get("JAVA_HOME")
    java = Path(java_home, "bin", "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise SparkClusterError(
            "no Java found (JAVA_HOME or java on PATH); Spark needs Java 17+ "
            "(Debian: apt-get install openjdk-17-jre-headless)"
        )


@contextmanager
def spark_cluster(
    root: Path, workers: int = 2, worker_memory: str = "1g", worker_cores: int = 1
) -> Iterator[SparkCluster]:
    """Start a master and `workers` workers under `root`; stop them all on exit, even on error.

    Each worker offers `worker_cores` cores and `worker_memory` to executors.
    """
    _check_java()
    home = spark_home()
    root = Path(root).resolve()
    for sub in ("logs", "pids", "work", "local", "conf"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    env = _daemon_env(root, home)
    port, ui_port = _free_port(), _free_port()
    master_url = f"spark://{HOST}:{port}"
    started: list[tuple[str, int]] = []
    try:
        _daemon(
            env,
            home,
            "start",
            MASTER_CLASS,
            "1",
            "--host",
            HOST,
            "--port",
            str(port),
            "--webui-port",
            str(ui_port),
        )
        started.append((MASTER_CLASS, 1))
        _wait_for_port(port, START_TIMEOUT, root / "logs")
        for number in range(1, workers + 1):
            _daemon(
                env,
                home,
                "start",
                WORKER_CLASS,
                str(number),
                "--host",
                HOST,
                "--webui-port",
                str(_free_port()),
                "--cores",
                str(worker_cores),
                "--memory",
                worker_memory,
                master_url,
            )
            started.append((WORKER_CLASS, number))
        _wait_for_workers(ui_port, workers, START_TIMEOUT, root / "logs")
        yield SparkCluster(master_url=master_url, web_ui_port=ui_port, workers=workers, root=root)
    finally:
        _stop(env, home, started)


def _stop(env: dict[str, str], home: Path, started: list[tuple[str, int]]) -> None:
    """Stop the daemons (workers first) and wait until their JVMs are gone, so the ports and
    the two cores are free when the context manager returns."""
    pids = [int(p.read_text()) for p in Path(env["SPARK_PID_DIR"]).glob("*.pid")]
    for command, number in reversed(started):
        _daemon(env, home, "stop", command, str(number))
    deadline = time.monotonic() + 60
    while pids and time.monotonic() < deadline:
        pids = [pid for pid in pids if _alive(pid)]
        time.sleep(0.2)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
