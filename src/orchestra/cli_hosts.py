"""`orchestra hosts [check] [--json]`: the machines runs may go to ([[hosts]] in your settings), and what each
has of what a run needs."""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

    from orchestra.core.hosts import Host


def cmd_hosts(args: argparse.Namespace) -> int:
    """List the hosts; with check, ask each (exit 1 when one lacks something or cannot be reached)."""
    from orchestra.core.hosts import check_host, load_hosts
    hosts = load_hosts()
    if args.action != "check":
        if args.json:
            print(json.dumps([host.to_json() for host in hosts], indent=2))
        else:
            for host in hosts:
                where = "this machine" if host.local else f"ssh {host.ssh}"
                slots = "no limit" if host.slots is None else f"{host.slots} slot{'s' if host.slots != 1 else ''}"
                print(f"{host.name:<12} {where:<32} {slots}"
                      + (f"  path {host.path}" if host.path else ""))
        return 0
    chosen = [host for host in hosts if not args.name or host.name in args.name]
    if args.name and len(chosen) < len(set(args.name)):
        known = ", ".join(host.name for host in hosts)
        unknown = sorted(set(args.name) - {host.name for host in hosts})
        print(f"orchestra: no host {', '.join(unknown)} (hosts: {known})", file=sys.stderr)
        return 2
    if args.install:
        chosen = install_on([host for host in chosen if not host.local])
    checks = [check_host(host) for host in chosen]
    if args.json:
        print(json.dumps([check.to_json() for check in checks], indent=2))
    else:
        for check in checks:
            had = ", ".join(filter(None, (check.git, check.python and f"Python {check.python}",
                                          check.orchestra and f"orchestra at {check.orchestra}")))
            print(f"{check.host.name}: {'ok' if check.ok else 'NOT READY'}" + (f" ({had})" if had else ""))
            for problem in check.problems:
                print(f"  - {problem}")
    return 0 if all(check.ok for check in checks) else 1


def install_on(hosts: list[Host]) -> list[Host]:
    """Install orchestra at each host from this checkout's lock (what the host's pip fetches is checked against
    its hashes), set each host's orchestra command in the settings; the hosts as they are now."""
    from orchestra.core.base.errors import BadUsage
    from orchestra.core.host_install import checkout, install
    from orchestra.core.hosts import set_host_command
    if not hosts:
        raise BadUsage("--install needs a host reached over ssh (local is this machine)")
    root = checkout()
    done = []
    for host in hosts:
        print(f"{host.name}: installing orchestra from {root / 'requirements.lock'} (a few minutes the first time: "
              "the host downloads every package, each checked against its sha256)…", file=sys.stderr)
        installed = install(host, root)
        set_host_command(host.name, installed.command)
        print(f"{host.name}: installed; its orchestra is {installed.command} (set in your settings)", file=sys.stderr)
        done.append(dataclasses.replace(host, orchestra=installed.command))
    return done
