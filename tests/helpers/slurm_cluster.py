"""A real SLURM controller on this machine for tests: Debian's slurmctld + slurmd + munge, installed when
missing (as root, with apt-get), configured outside /etc through SLURM_CONF, with this host as the only real
node plus fake A40/A800 nodes that only `sbatch --test-only` uses."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
BINARIES = ["slurmctld", "slurmd", "sbatch", "munged"]


class Unavailable(Exception):
    """SLURM cannot be installed or started here; the reason says why."""


def _ensure_installed() -> None:
    if all(shutil.which(b) or Path(f"/usr/sbin/{b}").exists() for b in BINARIES):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise Unavailable("SLURM is not installed and apt-get as root is not available to install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]
    if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise Unavailable(f"apt-get install {' '.join(PACKAGES)} failed: {proc.stderr.strip()[-200:]}")


def _ensure_munge() -> None:
    if subprocess.run("munge -n | unmunge", shell=True, capture_output=True).returncode == 0:
        return
    Path("/run/munge").mkdir(parents=True, exist_ok=True)
    shutil.chown("/run/munge", "munge", "munge")
    if not Path("/etc/munge/munge.key").exists():
        subprocess.run(["/usr/sbin/mungekey", "--create"], capture_output=True)
    subprocess.run(["/usr/sbin/munged", "--force"], capture_output=True)
    for _ in range(50):
        if subprocess.run("munge -n | unmunge", shell=True, capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    raise Unavailable("munged did not start")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CONF = """\
ClusterName=nvc1btest
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
JobRequeue=1
MinJobAge=3600
KillWait=5
# a requeued job may start again once its old credential has expired (default 120 s); the requeue test waits for it
AuthInfo=cred_expire=10
GresTypes=gpu
NodeName={host} CPUs={cpus} RealMemory={mem} State=UNKNOWN
NodeName=a40-[01-08] NodeAddr=127.0.0.2 CPUs=64 RealMemory=500000 Gres=gpu:a40:4 State=UNKNOWN
NodeName=a800-01 NodeAddr=127.0.0.3 CPUs=64 RealMemory=1000000 Gres=gpu:a800:4 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
PartitionName=a40 Nodes=a40-[01-08] MaxTime=INFINITE State=UP
PartitionName=a800 Nodes=a800-01 MaxTime=INFINITE State=UP
"""


@dataclass
class LocalSlurm:
    root: Path
    conf: Path
    host: str
    processes: list[subprocess.Popen]

    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def scontrol(self, *args: str) -> str:
        return subprocess.run(["scontrol", *args], env=self.env(), capture_output=True, text=True).stdout

    def job(self, job_id: str) -> dict[str, str]:
        out = self.scontrol("show", "job", "--oneliner", job_id)
        return dict(tok.split("=", 1) for tok in out.split() if "=" in tok)

    def stop(self) -> None:
        subprocess.run(["scancel", "--user=root"], env=self.env(), capture_output=True)
        for p in self.processes:
            p.terminate()
        for p in self.processes:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def start_local_slurm(root: Path) -> LocalSlurm:
    if os.geteuid() != 0:
        raise Unavailable("slurmd must run as root and the tests do not run as root")
    _ensure_installed()
    _ensure_munge()
    host = socket.gethostname().split(".")[0]
    (root / "state").mkdir(parents=True)
    (root / "spool").mkdir()
    mem = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20 * 0.8)
    conf = root / "slurm.conf"
    conf.write_text(CONF.format(host=host, root=root, ctld_port=_free_port(), d_port=_free_port(),
                                cpus=os.cpu_count(), mem=mem))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    ctld = subprocess.Popen(["slurmctld", "-D", "-i", "-f", str(conf)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(1)
    slurmd = subprocess.Popen(["slurmd", "-D", "-f", str(conf), "-N", host], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    cluster = LocalSlurm(root, conf, host, [slurmd, ctld])
    for _ in range(300):  # the real node registers; the fake ones leave UNKNOWN once the controller settles
        out = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], env=env, capture_output=True, text=True)
        states = set(out.stdout.split())
        if states and states <= {"idle", "mixed"}:
            return cluster
        time.sleep(0.2)
    cluster.stop()
    log = (root / "slurmctld.log").read_text()[-500:] if (root / "slurmctld.log").exists() else ""
    raise Unavailable(f"the local SLURM node did not come up: {log}")
