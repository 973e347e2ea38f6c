"""`python -m benchmarks [--quick] [--backends memory,redis] [--json PATH] [--profile …]`.

Use `benchmarks/run`, which first installs the bench dependency group into its own venv.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from .bench import run
from .report import render, write_json
from .servers import BACKENDS


def _backends(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in BACKENDS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown backend {', '.join(unknown) or '(none)'}; choose from {', '.join(BACKENDS)}"
        )
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds (~30 s)")
    parser.add_argument(
        "--backends",
        type=_backends,
        default=list(BACKENDS),
        help=f"comma-separated sessionware backends (default: {','.join(BACKENDS)})",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    parser.add_argument("--no-peers", action="store_true", help="skip starsessions and the rest")
    parser.add_argument("--no-flask", action="store_true", help="skip the WSGI (Flask) section")
    parser.add_argument(
        "--profile",
        metavar="BACKEND:MODE:SCENARIO",
        help="instead of benchmarking, profile one sessionware app (e.g. memory:explicit:counter,"
        " or flask-redis:auto_save:counter)",
    )
    args = parser.parse_args(argv)
    if args.profile:
        from .profile import profile, profile_flask

        if args.profile.startswith("flask-"):
            return profile_flask(args.profile)
        return asyncio.run(profile(args.profile))
    results = asyncio.run(
        run(args.backends, quick=args.quick, peers=not args.no_peers, flask=not args.no_flask)
    )
    print(render(results))
    if args.json is not None:
        write_json(results, args.json)
        print(f"\nresults written to {args.json}")
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())
