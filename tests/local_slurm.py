"""A real single-node SLURM cluster on this machine for the SLURM profile test.

Follows the recipe in the project's notes (shared/notes/slurm-local.md): slurm-wlm and munge from
Debian, one node with all CPUs and memory, partition ``debug``, no accounting database (so job status
comes from ``squeue``; ``MinJobAge`` keeps finished jobs visible to it). The daemons this module starts
are stopped by the PIDs in their pid files, never by name, and only those it started: a cluster that
is already up is used as it is and left running.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from system_packages import ensure_apt_packages

PACKAGES = ["slurm-wlm", "munge"]
COMMANDS = ["slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "munged"]
SLURM_CONF = Path("/etc/slurm/slurm.conf")
CGROUP_CONF = Path("/etc/slurm/cgroup.conf")
MUNGE_KEY = Path("/etc/munge/munge.key")
MUNGE_PID = Path("/run/munge/munged.pid")
SLURMCTLD_PID = Path("/run/slurmctld.pid")
SLURMD_PID = Path("/run/slurmd.pid")
PARTITION = "debug"
MARKER = "# written by anomalyflow tests/local_slurm.py"


class ClusterUnavailableError(Exception):
    """SLURM cannot be installed or started here (the reason is the message); the test skips."""


@dataclass
class Cluster:
    partition: str
    started: list[tuple[str, Path]] = field(default_factory=list)  # (daemon, pid file) we own
    restore: list[tuple[Path, Path]] = field(default_factory=list)  # (backup, original) config files
    reaper: bool = False  # this process is the daemons' subreaper (see _set_child_subreaper)

    def describe(self) -> str:
        owned = ", ".join(name for name, _ in self.started) or "none (an existing cluster)"
        return f"partition {self.partition}; daemons started by the test: {owned}"


def _run(command: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def _alive(pid_file: Path) -> int | None:
    """The PID in ``pid_file`` if that process is running (a zombie is not)."""
    try:
        pid = int(pid_file.read_text().split()[0])
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, ValueError, IndexError):
        return None
    return None if state in ("Z", "X") else pid


def _set_child_subreaper(on: bool) -> None:
    """Become the parent of the daemons we start (they double-fork away from us) so that we can reap them.

    Without this they are re-parented to PID 1, which in some containers never reaps: every stopped daemon
    and every finished job step (slurmstepd) would stay behind as a zombie.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, int(on), 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _reap_zombie_children() -> None:
    me = os.getpid()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == me:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(int(stat.parent.name), os.WNOHANG)


def _node_states() -> list[str]:
    try:
        result = _run(["sinfo", "--noheader", "--Node", "--format=%T"], timeout=10)
    except subprocess.TimeoutExpired:
        return []
    return result.stdout.split() if result.returncode == 0 else []


def _default_partition() -> str | None:
    result = _run(["sinfo", "--noheader", "--format=%P"], timeout=10)
    for name in result.stdout.split():
        if name.endswith("*"):
            return name[:-1]
    return None


def _slurm_conf(host: str, cpus: int, memory_mb: int) -> str:
    return f"""{MARKER}
ClusterName=anomalyflow
SlurmctldHost={host}
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
# squeue is the status source (no accounting database): keep finished jobs listed for 10 minutes.
MinJobAge=600
SchedulerType=sched/backfill
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile={SLURMCTLD_PID}
SlurmdPidFile={SLURMD_PID}
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ReturnToService=2
NodeName={host} CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def _write_config(cluster: Cluster, path: Path, text: str) -> None:
    """Write a config file, keeping somebody else's version aside to put back afterwards."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and MARKER not in path.read_text(errors="replace"):
        backup = path.with_name(path.name + ".anomalyflow-backup")
        shutil.copy2(path, backup)
        cluster.restore.append((backup, path))
    path.write_text(text)


def _start(cluster: Cluster, name: str, command: list[str], pid_file: Path) -> None:
    result = _run(command)
    for _ in range(50):
        if _alive(pid_file):
            cluster.started.append((name, pid_file))
            return
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not start ({' '.join(command)}: rc {result.returncode}, "
                       f"{(result.stdout + result.stderr).strip()[-500:]}); see /var/log/slurm/")


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024 - 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


def start() -> Cluster:
    """Install (if missing) and start a one-node cluster, or reuse one that answers already."""
    reason = ensure_apt_packages(COMMANDS, PACKAGES)
    if reason:
        raise ClusterUnavailableError(reason)
    if "idle" in _node_states() or "mixed" in _node_states():
        return Cluster(partition=_default_partition() or PARTITION)
    if os.geteuid() != 0:
        raise ClusterUnavailableError("no SLURM cluster answers and starting slurmctld/slurmd needs root")

    cluster = Cluster(partition=PARTITION, reaper=True)
    _set_child_subreaper(True)
    try:
        host = socket.gethostname().split(".")[0]
        for folder in ("/var/spool/slurmctld", "/var/spool/slurmd", "/var/log/slurm", "/run/munge"):
            Path(folder).mkdir(parents=True, exist_ok=True)
        _write_config(cluster, SLURM_CONF, _slurm_conf(host, os.cpu_count() or 1, _memory_mb()))
        _write_config(cluster, CGROUP_CONF, f"{MARKER}\nCgroupPlugin=autodetect\nIgnoreSystemd=yes\n")
        shutil.chown("/run/munge", "munge", "munge")
        if not MUNGE_KEY.exists():
            MUNGE_KEY.write_bytes(os.urandom(1024))
            shutil.chown(MUNGE_KEY, "munge", "munge")
            MUNGE_KEY.chmod(0o400)
        if not _alive(MUNGE_PID):
            # munged refuses to run as root.
            _start(cluster, "munged", ["su", "-s", "/bin/sh", "munge", "-c", "/usr/sbin/munged"], MUNGE_PID)
        # -c: start from a clean job state, not jobs left over from an earlier, interrupted test run.
        _start(cluster, "slurmctld", ["slurmctld", "-c"], SLURMCTLD_PID)
        _start(cluster, "slurmd", ["slurmd"], SLURMD_PID)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = _node_states()
            if "idle" in states:
                return cluster
            if any(s.startswith(("down", "drain")) for s in states):
                _run(["scontrol", "update", f"nodename={host}", "state=resume"])
            time.sleep(1)
        raise RuntimeError(f"the node did not become idle within 60 s (sinfo: {_node_states()}); "
                           "see /var/log/slurm/slurmctld.log and slurmd.log")
    except BaseException:
        stop(cluster)
        raise


def stop(cluster: Cluster) -> None:
    """Stop the daemons this module started (newest first), by PID, and put back any config it replaced."""
    for name, pid_file in reversed(cluster.started):
        pid = _alive(pid_file)
        if pid is None:
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if _alive(pid_file) != pid:
                break
            time.sleep(0.1)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        print(f"stopped {name} (pid {pid})")
    cluster.started.clear()
    if cluster.reaper:
        _reap_zombie_children()
        _set_child_subreaper(False)
        cluster.reaper = False
    for backup, original in cluster.restore:
        shutil.move(backup, original)
    cluster.restore.clear()


@contextlib.contextmanager
def running_cluster() -> Iterator[Cluster]:
    cluster = start()
    try:
        yield cluster
    finally:
        stop(cluster)
