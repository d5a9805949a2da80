"""`orchestra hosts [check] [--json]`: the machines runs may go to ([[hosts]] in your settings), and what each
has of what a run needs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse


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
    checks = [check_host(host) for host in hosts if not args.name or host.name in args.name]
    if args.name and len(checks) < len(set(args.name)):
        known = ", ".join(host.name for host in hosts)
        unknown = sorted(set(args.name) - {host.name for host in hosts})
        print(f"orchestra: no host {', '.join(unknown)} (hosts: {known})")
        return 2
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
