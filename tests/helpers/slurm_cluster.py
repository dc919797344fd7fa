"""A single-node SLURM cluster on 127.0.0.1 for the tests: munged + slurmctld + slurmd as background
processes (no systemd, no cgroups), one fake GPU. Facts behind each setting: design/CLUSTER_NOTES.md.

It writes /etc/slurm/slurm.conf (the jobstep plugin drops SLURM_CONF, so the config must live there) only
when there is none or the one there carries our marker, and it stops only the daemons it started.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import time
from pathlib import Path

MARKER = "# written by the tailedcore test suite (tests/slurm_cluster.py)"
SLURM_DIR = Path("/etc/slurm")
BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo", "scancel")


def missing_binaries() -> list[str]:
    found = {
        name: shutil.which(name) or (Path("/usr/sbin") / name if (Path("/usr/sbin") / name).exists() else None)
        for name in BINARIES
    }
    return [name for name, path in found.items() if not path]


def _binary(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin") / name)


def node_line() -> str:
    """The node's hardware as `slurmd -C` reports it, memory reduced by 512 MB (overstating drains the node)."""
    out = subprocess.run([_binary("slurmd"), "-C"], capture_output=True, text=True, check=True).stdout
    fields = dict(re.findall(r"(\w+)=(\S+)", out.splitlines()[0]))
    keys = ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore")
    memory = max(1024, int(fields["RealMemory"]) - 512)
    return (
        "NodeName=localhost NodeAddr=127.0.0.1 "
        + " ".join(f"{k}={fields[k]}" for k in keys)
        + f" RealMemory={memory} Gres=gpu:1 State=UNKNOWN"
    )


class SlurmCluster:
    def __init__(self, state_dir: Path):
        self.state = Path(state_dir)
        self.processes: list[subprocess.Popen] = []
        self.wrote_config = False

    # -- configuration ---------------------------------------------------------------------------------
    def config_is_ours_or_absent(self) -> bool:
        conf = SLURM_DIR / "slurm.conf"
        return not conf.exists() or conf.read_text().startswith(MARKER)

    def write_config(self) -> None:
        for sub in ("ctld", "d", "log"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        SLURM_DIR.mkdir(parents=True, exist_ok=True)
        s = self.state
        (SLURM_DIR / "slurm.conf").write_text(f"""{MARKER}
ClusterName=tailedcore-test
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={s}/ctld
SlurmdSpoolDir={s}/d
SlurmctldPidFile={s}/slurmctld.pid
SlurmdPidFile={s}/slurmd.pid
SlurmctldLogFile={s}/log/slurmctld.log
SlurmdLogFile={s}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=600
ReturnToService=2
GresTypes=gpu
{node_line()}
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
""")
        (SLURM_DIR / "gres.conf").write_text(f"{MARKER}\nName=gpu File=/dev/null\n")
        self.wrote_config = True

    # -- daemons ---------------------------------------------------------------------------------------
    def _start_munge(self) -> None:
        if subprocess.run(["pgrep", "-x", "munged"], capture_output=True).returncode == 0:
            return  # a munged is already running: use it, do not own it
        key = Path("/etc/munge/munge.key")
        if not key.exists():
            subprocess.run(["mungekey", "--create"], check=True)
        munge = pwd.getpwnam("munge")
        os.chown(key, munge.pw_uid, munge.pw_gid)
        key.chmod(0o400)
        for folder in ("/run/munge", "/var/lib/munge", "/var/log/munge"):
            Path(folder).mkdir(parents=True, exist_ok=True)
            os.chown(folder, munge.pw_uid, munge.pw_gid)
        self.processes.append(
            subprocess.Popen(
                ["runuser", "-u", "munge", "--", _binary("munged"), "--foreground"],
                stdout=subprocess.DEVNULL,
                stderr=open(self.state / "log" / "munged.log", "w"),
            )
        )
        self._wait(lambda: Path("/run/munge/munge.socket.2").exists(), "munged socket")

    def start(self) -> None:
        self.write_config()
        self._start_munge()
        log = self.state / "log"
        self.processes.append(
            subprocess.Popen([_binary("slurmctld"), "-D"], stdout=open(log / "ctld.out", "w"), stderr=subprocess.STDOUT)
        )
        self._wait(lambda: "UP" in self._run("scontrol", "ping"), "slurmctld")
        self.processes.append(
            subprocess.Popen(
                [_binary("slurmd"), "-D", "-N", "localhost"], stdout=open(log / "d.out", "w"), stderr=subprocess.STDOUT
            )
        )
        self._wait(lambda: "idle" in self._run("sinfo", "-h", "-o", "%T"), "an idle node")

    def stop(self) -> None:
        if shutil.which("scancel"):
            subprocess.run(["scancel", "--user", "root"], capture_output=True)
        for process in reversed(self.processes):
            process.terminate()
        for process in reversed(self.processes):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()
        if self.wrote_config:
            for name in ("slurm.conf", "gres.conf"):
                path = SLURM_DIR / name
                if path.exists() and path.read_text().startswith(MARKER):
                    path.unlink()

    def jobs(self) -> list[dict]:
        """Every job slurmctld still knows (MinJobAge keeps finished ones): id, name, state."""
        out = self._run("squeue", "--states=all", "-h", "-o", "%i|%j|%T")
        return [dict(zip(("id", "name", "state"), line.split("|"))) for line in out.splitlines() if line.strip()]

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted((self.state / "log").glob("*")))

    @staticmethod
    def _run(*command: str) -> str:
        result = subprocess.run(list(command), capture_output=True, text=True)
        return result.stdout

    def _wait(self, ready, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"{process.args[0]} exited ({process.returncode}) while waiting for {what}:\n" + self.logs()
                    )
            time.sleep(0.2)
        raise RuntimeError(f"timed out after {timeout} s waiting for {what}:\n" + self.logs())
