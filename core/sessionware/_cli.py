"""The `sessionware` command: list storage plugins, make a key, or serve the demo app."""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import sys
from collections.abc import Sequence

from ._loader import installed_storages


def _plugins(as_json: bool) -> int:
    rows = [
        {
            "name": storage.name,
            "distribution": storage.distribution,
            "version": storage.version,
            "module": storage.module,
        }
        for providers in installed_storages().values()
        for storage in providers
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no storage plugins installed; install one with `pip install sessionware`")
        return 0
    columns = ("name", "distribution", "version", "module")
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        print("  ".join(row[c].ljust(widths[c]) for c in columns).rstrip())
    return 0


def _keygen() -> int:
    """A new key for Config(encryption_keys=[...]): 32 random bytes as unpadded base64."""
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=")
    print(key.decode("ascii"))
    return 0


def _demo(host: str, port: int, storage: str) -> int:
    try:
        import uvicorn

        from ._demo import build_demo_app
    except ImportError as exc:
        print(
            f"the demo needs Starlette and uvicorn ({exc.name} is missing); "
            'install them with `pip install "sessionware[demo]"`',
            file=sys.stderr,
        )
        return 1
    app = build_demo_app(storage)
    print(f"sessionware demo on http://{host}:{port}/ (storage: {storage})", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="info")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sessionware", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    plugins = commands.add_parser("plugins", help="list the installed storage plugins")
    plugins.add_argument("--json", action="store_true", help="print a JSON list")
    commands.add_parser(
        "keygen", help="print a new key for Config(encryption_keys=[...]) (keep it secret)"
    )
    demo = commands.add_parser("demo", help="serve the demo app")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument(
        "--storage",
        default="memory",
        help="storage name or URL of any installed plugin, e.g. redis://127.0.0.1:6379/0",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "plugins":
        return _plugins(args.json)
    if args.command == "keygen":
        return _keygen()
    return _demo(args.host, args.port, args.storage)


if __name__ == "__main__":
    sys.exit(main())
