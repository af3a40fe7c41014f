"""The VM's own host name, set inside the VM and resolvable there, as on a real VM.

Scripts connect with ``-h "$(hostname)"`` and the like: on a real VM that name is in
``/etc/hosts`` (cloud-init writes it). Both stand-ins have their own UTS namespace and their
own ``/etc`` (the host stand-in's is a copy-on-write overlay, the container's a copy), so the
name and the entry never reach this host.
"""

from __future__ import annotations

import socket

LOOPBACK_NAME_ADDRESS = "127.0.1.1"
"""Debian's address for the machine's own name in ``/etc/hosts``."""


def hosts_with_name(hosts: str, hostname: str) -> str:
    """``hosts`` (an ``/etc/hosts`` text) with a line for ``hostname`` if none names it."""
    for line in hosts.splitlines():
        fields = line.split("#", 1)[0].split()
        if hostname in fields[1:]:
            return hosts
    sep = "" if not hosts or hosts.endswith("\n") else "\n"
    return f"{hosts}{sep}{LOOPBACK_NAME_ADDRESS}\t{hostname}\n"


def take_hostname(hostname: str, etc: str = "/etc") -> None:
    """Set the UTS namespace's host name and make it resolve through ``etc/hosts``."""
    socket.sethostname(hostname)
    with open(f"{etc}/hostname", "w") as f:
        f.write(hostname + "\n")
    try:
        with open(f"{etc}/hosts") as f:
            hosts = f.read()
    except FileNotFoundError:
        hosts = "127.0.0.1\tlocalhost\n"
    updated = hosts_with_name(hosts, hostname)
    if updated != hosts:
        with open(f"{etc}/hosts", "w") as f:
            f.write(updated)
