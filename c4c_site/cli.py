"""The `c4c` console command: serve the dashboard, list workflows, run one from the shell.

Each subcommand lives in a small function registered on the parser; later features add theirs
the same way.
"""

import argparse
import os
import sys
from collections.abc import Callable, Sequence

Handler = Callable[[argparse.Namespace], int]


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "c4c_site.settings")
    import django

    django.setup()


def cmd_serve(args: argparse.Namespace) -> int:
    """Migrate, then serve the ASGI app with daphne (SSE needs an async server)."""
    _setup_django()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    from daphne.cli import CommandLineInterface

    CommandLineInterface().run(
        ["--bind", args.host, "--port", str(args.port), "c4c_site.asgi:application"]
    )
    return 0


def cmd_workflows(args: argparse.Namespace) -> int:
    _setup_django()
    from workflows.library import workflow_library

    rows = [
        (d.id, d.name, d.version, str(len(d.nodes)))
        for d in sorted(workflow_library().all(), key=lambda d: d.id)
    ]
    header = ("ID", "NAME", "VERSION", "NODES")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="c4c", description="Run and watch c4c workflows.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the dashboard and API with daphne")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(handler=cmd_serve)

    listing = sub.add_parser("workflows", help="list workflow definitions")
    listing.set_defaults(handler=cmd_workflows)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
