"""The `sessionware` command: list or check storage plugins, make a key, or serve the demo app."""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import sys
from collections.abc import Sequence

from ._loader import InstalledStorage, check_storages, installed_storages


def _table(rows: list[dict[str, str]], columns: tuple[str, ...]) -> None:
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    print("  ".join(c.upper().replace("_", " ").ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        print("  ".join(row[c].ljust(widths[c]) for c in columns).rstrip())


def _described(storage: InstalledStorage) -> dict[str, str]:
    return {
        "name": storage.name,
        "distribution": storage.distribution,
        "version": storage.version,
        "module": storage.module,
    }


def _plugins(as_json: bool) -> int:
    rows = [
        _described(storage) for providers in installed_storages().values() for storage in providers
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no storage plugins installed; install one with `pip install sessionware`")
        return 0
    _table(rows, ("name", "distribution", "version", "module"))
    print(
        "\nListed without importing them; `sessionware plugins --check` imports each one and "
        "reports whether it loads and which optional hooks it implements."
    )
    return 0


def _hooks_cell(hooks: tuple[str, ...] | None) -> str:
    if hooks is None:
        return "?"
    return ", ".join(hooks) or "none"


def _check_plugins(as_json: bool) -> int:
    """Import every storage and check its hooks as a `Store` would; 1 when one is unusable."""
    checks = check_storages()
    failed = [check for check in checks if check.problem is not None]
    if as_json:
        rows = [
            {
                **_described(check.storage),
                "loads": check.loads,
                "optional_hooks": (
                    None if check.optional_hooks is None else list(check.optional_hooks)
                ),
                "problem": check.problem,
                "note": check.note,
            }
            for check in checks
        ]
        print(json.dumps(rows, indent=2))
        return 1 if failed else 0
    if not checks:
        print("no storage plugins installed; install one with `pip install sessionware`")
        return 0
    table = [
        {
            **_described(check.storage),
            "loads": "yes" if check.loads else "no",
            "optional_hooks": _hooks_cell(check.optional_hooks),
        }
        for check in checks
    ]
    _table(table, ("name", "distribution", "version", "module", "loads", "optional_hooks"))
    remarks = [
        f"{check.storage.name} ({check.storage.distribution} {check.storage.version}): {text}"
        for check in checks
        for text in (check.problem, check.note)
        if text is not None
    ]
    if remarks:
        print()
        print("\n".join(remarks))
    if failed:
        print(f"\n{len(failed)} of {len(checks)} storage names cannot be used: see above")
    else:
        print(f"\nall {len(checks)} storage names load")
    return 1 if failed else 0


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
    plugins = commands.add_parser(
        "plugins",
        help="list the installed storage plugins (without importing them)",
        description="List the installed storage plugins without importing them; with --check, "
        "import each one and report whether it loads and which optional hooks it implements.",
    )
    plugins.add_argument("--json", action="store_true", help="print a JSON list")
    plugins.add_argument(
        "--check",
        action="store_true",
        help="import each plugin, check its hooks as a Store would (without building it) and "
        "report its optional hooks; exits 1 when one fails to load or would be refused",
    )
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
        return _check_plugins(args.json) if args.check else _plugins(args.json)
    if args.command == "keygen":
        return _keygen()
    return _demo(args.host, args.port, args.storage)


if __name__ == "__main__":
    sys.exit(main())
