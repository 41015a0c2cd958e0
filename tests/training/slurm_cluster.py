"""A real one-node SLURM cluster for the tests: Debian's ``munged``, ``slurmctld`` and ``slurmd`` started as private
daemons (own key, socket, ports, state and spool folders under one directory), driven with the real client commands.

Needs root and ``apt-get install slurmctld slurmd slurm-client munge``. :func:`why_unavailable` says why a cluster
cannot be started here, for a skip message.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "scontrol", "scancel", "sinfo")


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def why_unavailable() -> str | None:
    """``None`` if a cluster can be started here, else the reason."""
    missing = [p for p in (*DAEMONS, *CLIENTS) if _which(p) is None]
    if missing:
        return f"{', '.join(missing)} not installed: apt-get install slurmctld slurmd slurm-client munge"
    if os.geteuid() != 0:
        return "the SLURM daemons of the test cluster must run as root"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SlurmCluster:
    """One node (this host, 2 CPUs), one partition ``debug``; ``env`` points the client commands at it."""

    def __init__(self, root: Path, cpus: int = 2) -> None:
        self.root = root
        self.cpus = cpus
        self.node = socket.gethostname().split(".")[0]
        self.conf = root / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    # ------------------------------------------------------------------ daemons
    def start(self, timeout: float = 60) -> None:
        for sub in ("munge", "state", "spool", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        munge = self.root / "munge"
        munge.chmod(0o700)
        key = munge / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self.socket = munge / "munge.socket"
        self._check(
            _which("munged") or "munged",
            "--force",
            f"--key-file={key}",
            f"--socket={self.socket}",
            f"--pid-file={munge / 'munged.pid'}",
            f"--log-file={self.root / 'log' / 'munged.log'}",
            f"--seed-file={munge / 'munged.seed'}",
        )
        self.conf.write_text(self._config())
        self._check(_which("slurmctld") or "slurmctld", "-f", str(self.conf))
        self._check(_which("slurmd") or "slurmd", "-f", str(self.conf))
        self._wait(
            lambda: "idle" in self.run("sinfo", "-h", "-o", "%T").stdout, timeout, "the node to come up"
        )

    def _config(self) -> str:
        r = self.root
        return "\n".join(
            [
                "ClusterName=inpainttest",
                f"SlurmctldHost={self.node}",
                "SlurmUser=root",
                "AuthType=auth/munge",
                "CredType=cred/munge",
                f"AuthInfo=socket={self.socket}",
                f"StateSaveLocation={r / 'state'}",
                f"SlurmdSpoolDir={r / 'spool'}",
                f"SlurmctldPidFile={r / 'slurmctld.pid'}",
                f"SlurmdPidFile={r / 'slurmd.pid'}",
                f"SlurmctldPort={_free_port()}",
                f"SlurmdPort={_free_port()}",
                f"SlurmctldLogFile={r / 'log' / 'slurmctld.log'}",
                f"SlurmdLogFile={r / 'log' / 'slurmd.log'}",
                # What runs on these machines: no cgroups, no accounting.
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "JobAcctGatherType=jobacct_gather/none",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_Core",
                "MpiDefault=none",
                "ReturnToService=2",
                "KillWait=15",
                f"NodeName={self.node} CPUs={self.cpus} RealMemory=4000 State=UNKNOWN",
                "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
                "",
            ]
        )

    def stop(self) -> None:
        subprocess.run(["scontrol", "shutdown"], env=self.env, capture_output=True, timeout=30, check=False)
        for pid_file in (
            self.root / "slurmd.pid",
            self.root / "slurmctld.pid",
            self.root / "munge" / "munged.pid",
        ):
            with contextlib.suppress(OSError, ValueError):  # already gone
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGTERM)

    def logs(self) -> str:
        """The daemons' logs, for a failing test's message."""
        return "\n".join(
            f"== {p.name}\n{p.read_text()[-3000:]}" for p in sorted((self.root / "log").glob("*.log"))
        )

    # ------------------------------------------------------------------ clients
    def run(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args), env=self.env, capture_output=True, text=True, timeout=60, check=check
        )

    def _check(self, *args: str) -> None:
        proc = subprocess.run(list(args), env=self.env, capture_output=True, text=True, timeout=60)
        if proc.returncode:
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr}\n{self.logs()}")

    def sbatch(self, *args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
        """Submit; returns the job id."""
        proc = subprocess.run(
            ["sbatch", "--parsable", *args],
            cwd=cwd,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=60,
        )
        if proc.returncode:
            raise RuntimeError(f"sbatch {' '.join(args)} failed: {proc.stderr}")
        return proc.stdout.strip().split(";")[0]

    def job(self, job_id: str) -> dict[str, str]:
        """``scontrol show job``'s fields (empty once the job is forgotten)."""
        out = self.run("scontrol", "-o", "show", "job", job_id).stdout
        return dict(f.split("=", 1) for f in out.split() if "=" in f)

    def release(self, job_id: str) -> None:
        """Start a requeued job in a few seconds instead of after SLURM's requeue delay (about two minutes).

        Not ``now``: slurmd refuses a launch whose credential dates from the second in which the job's previous run
        was killed ("Job N already killed, do not launch batch job"), and the job then fails.
        """
        self.run("scontrol", "update", f"JobId={job_id}", "StartTime=now+3", check=True)

    def wait_job(self, job_id: str, states: set[str], timeout: float) -> dict[str, str]:
        """Wait until the job is in one of ``states`` (e.g. ``{"COMPLETED"}``); returns its fields."""
        fields: dict[str, str] = {}

        def reached() -> bool:
            nonlocal fields
            fields = self.job(job_id)
            return fields.get("JobState") in states

        self._wait(reached, timeout, f"job {job_id} to reach {sorted(states)} (now {fields.get('JobState')})")
        return fields

    def _wait(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}\n{self.logs()}")
            time.sleep(0.5)
