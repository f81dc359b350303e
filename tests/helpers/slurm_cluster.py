"""A real SLURM controller on this machine for tests: Debian's slurmctld + slurmd + munge, installed when
missing (as root, with apt-get), configured outside /etc through SLURM_CONF, with this host as the only real
node plus fake A40/A800 nodes that only `sbatch --test-only` uses; or (``start_two_node_slurm``) one controller
and two nodes, each slurmd in its own network namespace with its own address on a private bridge of this
machine, so that a job's processes on the two nodes meet over the network as on a real cluster."""

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


COMMON = """\
SlurmUser=root
SlurmdUser=root
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/munge
StateSaveLocation={root}/state
SlurmctldPidFile={root}/slurmctld.pid
SlurmctldLogFile={root}/slurmctld.log
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
"""

CONF = """\
ClusterName=nvc1btest
SlurmctldHost={host}
SlurmdSpoolDir={root}/spool
SlurmdPidFile={root}/slurmd.pid
SlurmdLogFile={root}/slurmd.log
""" + COMMON + """\
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


def _wait_idle(cluster: "LocalSlurm", nodes: int | None = None) -> None:
    """Until every node (or ``nodes`` of them) is idle; stops the cluster and raises Unavailable if none come up."""
    for _ in range(300):  # the real nodes register; fake ones leave UNKNOWN once the controller settles
        out = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], env=cluster.env(), capture_output=True, text=True)
        states = out.stdout.split()
        if states and set(states) <= {"idle", "mixed"} and (nodes is None or len(states) == nodes):
            return
        time.sleep(0.2)
    cluster.stop()
    log = (cluster.root / "slurmctld.log").read_text()[-500:] if (cluster.root / "slurmctld.log").exists() else ""
    raise Unavailable(f"the local SLURM nodes did not come up: {log}")


def _prepare(root: Path) -> None:
    if os.geteuid() != 0:
        raise Unavailable("slurmd must run as root and the tests do not run as root")
    _ensure_installed()
    _ensure_munge()
    (root / "state").mkdir(parents=True)
    (root / "spool").mkdir()


def _memory_mb(share: float) -> int:
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20 * share)


def start_local_slurm(root: Path) -> LocalSlurm:
    _prepare(root)
    host = socket.gethostname().split(".")[0]
    conf = root / "slurm.conf"
    conf.write_text(CONF.format(host=host, root=root, ctld_port=_free_port(), d_port=_free_port(),
                                cpus=os.cpu_count(), mem=_memory_mb(0.8)))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    ctld = subprocess.Popen(["slurmctld", "-D", "-i", "-f", str(conf)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(1)
    slurmd = subprocess.Popen(["slurmd", "-D", "-f", str(conf), "-N", host], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    cluster = LocalSlurm(root, conf, host, [slurmd, ctld])
    _wait_idle(cluster)
    return cluster


BRIDGE = "nvc1b-br0"
SUBNET = "10.213.77"
"""Private addresses that exist only on this machine's bridge: the controller .1, node i at .(i+1)."""

TWO_NODE_CONF = """\
ClusterName=nvc1btwo
SlurmctldHost={host}({subnet}.1)
SlurmdSpoolDir={root}/spool/%n
SlurmdPidFile={root}/slurmd-%n.pid
SlurmdLogFile={root}/slurmd-%n.log
""" + COMMON + """\
NodeName=n[1-2] NodeAddr={subnet}.[2-3] CPUs={cpus} RealMemory={mem} State=UNKNOWN
PartitionName=two Nodes=n[1-2] Default=YES MaxTime=INFINITE State=UP
"""


def _sh(*args: str) -> None:
    proc = subprocess.run(list(args), capture_output=True, text=True)
    if proc.returncode != 0:
        raise Unavailable(f"{' '.join(args)}: {proc.stderr.strip()}")


@dataclass
class Network:
    """A bridge on this machine and one network namespace per node, each joined to it by a veth pair; the node's
    /etc/hosts (/etc/netns/<ns>/hosts, as iproute2 keeps it) names every node and the controller."""

    namespaces: list[str]

    @classmethod
    def create(cls, host: str, nodes: list[str]) -> "Network":
        net = cls([])
        try:
            _sh("ip", "link", "add", BRIDGE, "type", "bridge")
            _sh("ip", "addr", "add", f"{SUBNET}.1/24", "dev", BRIDGE)
            _sh("ip", "link", "set", BRIDGE, "up")
            hosts = f"127.0.0.1 localhost\n{SUBNET}.1 {host}\n" + \
                "".join(f"{SUBNET}.{i + 2} {n}\n" for i, n in enumerate(nodes))
            for i, node in enumerate(nodes):
                ns = f"nvc1b-{node}"
                _sh("ip", "netns", "add", ns)
                net.namespaces.append(ns)
                _sh("ip", "link", "add", f"{ns}-h", "type", "veth", "peer", "name", "eth0", "netns", ns)
                _sh("ip", "link", "set", f"{ns}-h", "master", BRIDGE, "up")
                _sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{SUBNET}.{i + 2}/24", "dev", "eth0")
                _sh("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up")
                _sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
                Path(f"/etc/netns/{ns}").mkdir(parents=True, exist_ok=True)
                Path(f"/etc/netns/{ns}/hosts").write_text(hosts)
        except Unavailable:
            net.remove()
            raise
        return net

    def remove(self) -> None:
        """Kill whatever still runs in the namespaces, then remove them, their veths and the bridge."""
        for ns in self.namespaces:
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), 9)
                except (ProcessLookupError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            shutil.rmtree(f"/etc/netns/{ns}", ignore_errors=True)
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)
        self.namespaces = []


@dataclass
class TwoNodeSlurm(LocalSlurm):
    network: Network | None = None

    def stop(self) -> None:
        super().stop()
        if self.network is not None:
            self.network.remove()


def start_two_node_slurm(root: Path) -> TwoNodeSlurm:
    """One slurmctld on this machine at the bridge address, slurmd n1 and n2 in their own network namespaces
    (with their own hostnames, UTS namespaces), one munge; jobs on n[1-2] see two hosts."""
    if os.geteuid() == 0 and not shutil.which("ip"):
        raise Unavailable("the ip command (iproute2) is needed for the two-node network")
    _prepare(root)
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        raise Unavailable(f"network bridge {BRIDGE} exists already (another two-node cluster is running)")
    host = socket.gethostname().split(".")[0]
    nodes = ["n1", "n2"]
    network = Network.create(host, nodes)
    conf = root / "slurm.conf"
    conf.write_text(TWO_NODE_CONF.format(host=host, subnet=SUBNET, root=root, ctld_port=_free_port(),
                                         d_port=_free_port(), cpus=os.cpu_count(), mem=_memory_mb(0.4)))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    cluster = TwoNodeSlurm(root, conf, host, [], network)
    cluster.processes.append(subprocess.Popen(["slurmctld", "-D", "-i", "-f", str(conf)], env=env,
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(1)
    for node in nodes:
        # nsenter rather than `ip netns exec`, which remounts /sys without the cgroup mounts slurmd needs; the
        # node's own /etc/hosts is bind-mounted in a private mount namespace instead
        (root / "spool" / node).mkdir()
        start = f"mount --bind /etc/netns/nvc1b-{node}/hosts /etc/hosts && hostname {node} && " \
                f"exec slurmd -D -f {conf} -N {node}"
        cluster.processes.insert(0, subprocess.Popen(
            ["nsenter", f"--net=/run/netns/nvc1b-{node}", "unshare", "--uts", "--mount", "sh", "-c", start],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    _wait_idle(cluster, nodes=len(nodes))
    return cluster
