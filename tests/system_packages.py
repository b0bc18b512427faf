"""Debian packages that a few integration tests need (SLURM, chromium), installed on demand.

The tests install what is missing rather than skip, so that CI exercises the cluster and browser
paths; they skip, with the reason, only where installing is impossible (not root, no apt, no
network to the package mirror).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

POLICY_RC_D = Path("/usr/sbin/policy-rc.d")


def missing_commands(commands: list[str]) -> list[str]:
    return [name for name in commands if shutil.which(name) is None]


def ensure_apt_packages(commands: list[str], packages: list[str], *, timeout: int = 600) -> str | None:
    """Install ``packages`` with apt unless every one of ``commands`` is already on PATH.

    Returns None when the commands are available afterwards, else the reason they are not (for
    ``pytest.skip``). A failed install that is not about permissions or the network is returned the
    same way, with apt's last lines, so the test log says what went wrong.
    """
    if not missing_commands(commands):
        return None
    if shutil.which("apt-get") is None:
        return f"{', '.join(missing_commands(commands))} not installed and no apt-get to install {packages}"
    if os.geteuid() != 0:
        return f"{', '.join(missing_commands(commands))} not installed and installing {packages} needs root"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Another process (an engineer, unattended-upgrades) may hold the dpkg lock for a while.
    lock = ["-o", "DPkg::Lock::Timeout=300"]
    steps = [["apt-get", *lock, "update", "-qq"],
             ["apt-get", *lock, "install", "-y", "-qq", "--no-install-recommends", *packages]]
    with _no_service_starts():
        for step in steps:
            try:
                result = subprocess.run(step, env=env, capture_output=True, text=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                return f"`{' '.join(step)}` timed out after {timeout} s (package mirror unreachable?)"
            if result.returncode != 0:
                tail = " | ".join((result.stdout + result.stderr).strip().splitlines()[-3:])
                return f"`{' '.join(step)}` failed ({result.returncode}): {tail}"
    still = missing_commands(commands)
    if still:
        return f"installed {packages} but {still} still not on PATH"
    return None


@contextlib.contextmanager
def _no_service_starts() -> Iterator[None]:
    """Keep package scripts from starting daemons (munged, slurmctld) during the install: the tests start
    the daemons they need themselves and stop exactly those. Debian's policy-rc.d exit status 101 means
    "action forbidden"; an existing policy (as in Docker images) is left as it is."""
    if POLICY_RC_D.exists():
        yield
        return
    POLICY_RC_D.write_text("#!/bin/sh\n# temporary, written by anomalyflow's tests during apt-get install\nexit 101\n")
    POLICY_RC_D.chmod(0o755)
    try:
        yield
    finally:
        POLICY_RC_D.unlink(missing_ok=True)
