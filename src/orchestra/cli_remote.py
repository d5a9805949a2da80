"""`orchestra remote VERB --path DIR --repo KEY ...`: what a host does for the runs sent to it, run there over
ssh by each run's relay (supervise.relay); not a command for people. Each verb answers one line of JSON (follow
answers a stream of them); see fleet.hosted."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from orchestra.core.base.errors import BadUsage

if TYPE_CHECKING:
    import argparse

    from orchestra.core.git.repo import Repository

VERBS = ("prepare", "start", "follow", "stop", "clean", "attach")


def cmd_remote(args: argparse.Namespace) -> int:
    from orchestra.core.fleet import hosted
    repo = hosted.host_repository(args.path, args.repo)
    if args.verb == "prepare":
        hosted.emit(hosted.prepare(repo))
        return 0
    if not args.run:
        raise BadUsage(f"orchestra remote {args.verb} needs a run id")
    if args.verb == "start":
        try:
            order = json.loads(sys.stdin.buffer.read(64 << 20))
        except ValueError:
            raise BadUsage("the order on stdin is not JSON") from None
        if not isinstance(order, dict):
            raise BadUsage("the order on stdin is not a JSON object")
        hosted.emit({"k": "started", **hosted.start(repo, order, args.mode)})
        if args.follow:  # the stream at once, without a second connection and start-up
            return follow(repo, args)
    elif args.verb == "follow":
        return follow(repo, args)
    elif args.verb == "stop":
        hosted.emit(hosted.stop(repo, args.run))
    elif args.verb == "clean":
        hosted.emit(hosted.clean(repo, args.run))
    elif args.verb == "attach":
        from orchestra.core.supervise.attach import parse_key
        ok, message = hosted.attach(repo, args.run, parse_key(args.detach_key))
        print(message, file=sys.stdout if ok else sys.stderr)
        return 0 if ok else 1
    return 0


def follow(repo: Repository, args: argparse.Namespace) -> int:
    from orchestra.core.fleet import hosted
    try:
        for message in hosted.follow(repo, args.run, args.offset, args.once):
            hosted.emit(message)
    except BrokenPipeError:  # the relay went (a dropped connection): the run goes on here
        pass
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    remote = sub.add_parser("remote", help="(orchestra's own, run on a host over ssh by a remote run's relay)")
    remote.add_argument("verb", choices=VERBS)
    remote.add_argument("run", nargs="?")
    remote.add_argument("--path", required=True, help="orchestra's directory on this host")
    remote.add_argument("--repo", required=True, help="the repository's key")
    remote.add_argument("--mode", default="run", choices=("run", "watch"))
    remote.add_argument("--from", dest="offset", type=int, default=0, help="follow: the log's byte offset")
    remote.add_argument("--once", action="store_true", help="follow: what there is now, then end")
    remote.add_argument("--follow", action="store_true", help="start: then stream the run, as follow does")
    remote.add_argument("--detach-key", default="ctrl-]")
