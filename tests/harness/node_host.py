"""Host-side pieces of the test node: the pod network, iptables, mounts and a leak snapshot.

Everything here names what it creates (a dedicated bridge, a dummy interface, chains that were
not there before) so that teardown removes exactly that and nothing belonging to anyone else
on the machine (podman's cni-podman0 and its CNI-* chains, for one).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

BRIDGE = "mgbr0"
POD_SUBNET = "10.214.0.0/24"
POD_GATEWAY = "10.214.0.1"
# The node's --node-ip: the bridge's own address (this kernel has no `dummy` link type).
NODE_IP = POD_GATEWAY
SERVICE_SUBNET = "10.0.0.0/24"  # tests/harness/envtest.py's --service-cluster-ip-range
CNI_NETWORK = "mgnet"
CNI_BIN = Path("/usr/lib/cni")
# kubelet's and kube-proxy's chains. Our CNI network uses no plugin that makes CNI-* chains
# (no firewall, portmap or ipMasq), so CNI-* chains here belong to podman and are left alone.
OUR_CHAIN_PREFIXES = ("KUBE-",)
# What other users of this machine (podman, run by other tests at the same time) create, so the
# leak check does not blame the node for it: their netns, mounts and veths on their bridge.
FOREIGN_NETNS_PREFIXES = ("netns-",)
FOREIGN_MOUNT_PREFIXES = (
    "/var/lib/containers/",
    "/run/containers/",
    "/run/netns/netns-",
    "/run/user/",
)
OUR_RULE_MARKS = ("KUBE-", "CNI-", BRIDGE, "10.214.0.")
# Sysctls kubelet sets when protectKernelDefaults is false: restored at teardown.
KUBELET_SYSCTLS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)


def run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True)


def cni_config(ipam_dir: Path) -> dict[str, object]:
    """A bridge network whose pods reach only the pod subnet, the node IP and Service IPs.

    No default route in the pod (nothing can leave the machine), no masquerade, no firewall or
    portmap plugin (they would share podman's CNI-* chains).
    """
    return {
        "cniVersion": "0.4.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(ipam_dir),
                    "ranges": [[{"subnet": POD_SUBNET, "gateway": POD_GATEWAY}]],
                    "routes": [{"dst": SERVICE_SUBNET}],
                },
            }
        ],
    }


def add_node_address() -> None:
    """The pod bridge, made before kubelet starts so that --node-ip is on it (not loopback).

    The CNI bridge plugin then finds the bridge and its gateway address already there.
    """
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        raise RuntimeError(f"{BRIDGE} exists: another node is up (python -m harness.node down)")
    run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    run(["ip", "addr", "add", f"{POD_GATEWAY}/24", "dev", BRIDGE])
    run(["ip", "link", "set", BRIDGE, "up"])


def delete_links() -> None:
    for link in (BRIDGE,):
        if Path(f"/sys/class/net/{link}").exists():
            run(["ip", "link", "delete", link], check=False)


def read_sysctls() -> dict[str, str]:
    values = {}
    for key in KUBELET_SYSCTLS:
        with contextlib.suppress(OSError):
            values[key] = Path("/proc/sys", key).read_text().strip()
    return values


def restore_sysctls(values: dict[str, str]) -> None:
    for key, value in values.items():
        with contextlib.suppress(OSError):
            Path("/proc/sys", key).write_text(value)


def iptables_chains() -> dict[str, list[str]]:
    """``{"ip4:nat": [chains...], ...}`` from iptables-save / ip6tables-save."""
    found: dict[str, list[str]] = {}
    for family, tool in (("ip4", "iptables-save"), ("ip6", "ip6tables-save")):
        table = ""
        for line in run([tool], check=False).stdout.splitlines():
            if line.startswith("*"):
                table = line[1:]
                found.setdefault(f"{family}:{table}", [])
            elif line.startswith(":"):
                found[f"{family}:{table}"].append(line[1:].split()[0])
    return found


def iptables_rules() -> list[str]:
    """Every rule, as ``family:table rule``: the leak check compares these."""
    rules = []
    for family, tool in (("ip4", "iptables-save"), ("ip6", "ip6tables-save")):
        table = ""
        for line in run([tool], check=False).stdout.splitlines():
            if line.startswith("*"):
                table = line[1:]
            elif line.startswith("-A "):
                rules.append(f"{family}:{table} {line}")
    return sorted(rules)


def remove_new_chains(before: dict[str, list[str]]) -> list[str]:
    """Delete KUBE-*/CNI-* chains that were not there ``before``, and every jump into them."""
    removed = []
    for family, tool in (("ip4", "iptables"), ("ip6", "ip6tables")):
        dump = run([f"{tool}-save"], check=False).stdout
        table = ""
        rules: dict[str, list[list[str]]] = {}
        for line in dump.splitlines():
            if line.startswith("*"):
                table = line[1:]
                rules[table] = []
            elif line.startswith("-A "):
                rules[table].append(shlex.split(line))
        for table, table_rules in rules.items():
            old = set(before.get(f"{family}:{table}", []))
            chains = {
                c
                for c in iptables_chains().get(f"{family}:{table}", [])
                if c.startswith(OUR_CHAIN_PREFIXES) and c not in old
            }
            if not chains:
                continue
            for rule in table_rules:
                target = _target(rule)
                if rule[1] not in chains and target in chains:
                    run([tool, "-t", table, "-D", *rule[1:]], check=False)
            for chain in chains:
                run([tool, "-t", table, "-F", chain], check=False)
            for chain in chains:
                run([tool, "-t", table, "-X", chain], check=False)
                removed.append(f"{family}:{table}:{chain}")
    return removed


def _target(rule: list[str]) -> str:
    for flag in ("-j", "-g"):
        if flag in rule:
            return rule[rule.index(flag) + 1]
    return ""


def mounts_under(*roots: Path) -> list[str]:
    """Mount points below any of ``roots``, deepest first (the order to unmount them)."""
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point == str(r) or point.startswith(f"{r}/") for r in roots):
            points.append(point)
    return sorted(set(points), key=lambda p: p.count("/"), reverse=True)


def unmount_under(*roots: Path) -> None:
    for _ in range(3):
        points = mounts_under(*roots)
        if not points:
            return
        for point in points:
            if run(["umount", point], check=False).returncode:
                run(["umount", "-l", point], check=False)


def command_line(pid: int) -> str:
    """The process's command line, space-separated ("" once it is gone or a zombie)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def processes_mentioning(*needles: str) -> list[int]:
    """PIDs whose command line contains one of ``needles`` (our socket or work dir paths)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        cmdline = command_line(int(entry.name))
        if any(n in cmdline for n in needles):
            pids.append(int(entry.name))
    return pids


# Directories containerd, runc and kubelet create outside our work dir (checked and removed
# when they did not exist before the node started and are empty afterwards).
HOST_DIRS = (
    Path("/run/containerd"),
    Path("/var/log/pods"),
    Path("/var/log/containers"),
    *(
        Path("/sys/fs/cgroup") / h / "k8s.io"
        for h in (
            "blkio",
            "cpu",
            "cpuacct",
            "cpuset",
            "devices",
            "freezer",
            "memory",
            "pids",
            "systemd",
            "unified",
        )
    ),
)


def existing_host_dirs() -> list[str]:
    return sorted(str(d) for d in HOST_DIRS if d.exists())


def remove_new_host_dirs(before: list[str]) -> list[str]:
    """rmdir, deepest first, the HOST_DIRS trees that appeared; a non-empty one is reported."""
    left = []
    for top in HOST_DIRS:
        if str(top) in before or not top.exists():
            continue
        dirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for d in [*dirs, top]:
            try:
                d.rmdir()
            except OSError:
                left.append(str(d))
    return left


@dataclass
class HostSnapshot:
    """What a node could leak: compared before and after a node's life."""

    netns: list[str]
    links: list[str]
    rules: list[str]
    mounts: list[str]
    dirs: list[str]
    sysctls: list[str]

    @classmethod
    def take(cls) -> HostSnapshot:
        netns = (
            sorted(p.name for p in Path("/run/netns").glob("*"))
            if Path("/run/netns").exists()
            else []
        )
        links = sorted(p.name for p in Path("/sys/class/net").iterdir())
        mounts = sorted(
            line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
        )
        return cls(
            netns=netns,
            links=links,
            rules=iptables_rules(),
            mounts=mounts,
            dirs=existing_host_dirs(),
            sysctls=sorted(f"{k}={v}" for k, v in read_sysctls().items()),
        )

    def added_since(self, before: HostSnapshot) -> dict[str, list[str]]:
        """What appeared since ``before`` and could be the node's (see FOREIGN_* above)."""
        added = {
            name: sorted(set(getattr(self, name)) - set(getattr(before, name)))
            for name in ("netns", "links", "rules", "mounts", "dirs", "sysctls")
        }
        added["netns"] = [n for n in added["netns"] if not n.startswith(FOREIGN_NETNS_PREFIXES)]
        added["mounts"] = [m for m in added["mounts"] if not m.startswith(FOREIGN_MOUNT_PREFIXES)]
        added["rules"] = [r for r in added["rules"] if any(k in r for k in OUR_RULE_MARKS)]
        added["links"] = [name for name in added["links"] if _master(name) in ("", BRIDGE)]
        return {name: items for name, items in added.items() if items}


def _master(link: str) -> str:
    """The bridge a link is enslaved to ('' if none or gone)."""
    master = Path("/sys/class/net", link, "master")
    return master.resolve().name if master.exists() else ""


def netns_of_containers(ctr: list[str]) -> list[str]:
    """Network namespace paths in the OCI specs of containerd's k8s.io containers (sandboxes)."""
    paths = []
    ids = run([*ctr, "containers", "ls", "-q"], check=False).stdout.split()
    for cid in ids:
        info = run([*ctr, "containers", "info", cid], check=False).stdout
        with contextlib.suppress(ValueError, KeyError, TypeError):
            for ns in json.loads(info)["Spec"]["linux"]["namespaces"]:
                if ns.get("type") == "network" and ns.get("path"):
                    paths.append(ns["path"])
    return sorted(set(paths))
