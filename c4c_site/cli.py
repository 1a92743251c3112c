"""The `c4c` console command: serve the dashboard, list workflows, run one from the shell.

Each subcommand lives in a small function registered on the parser; later features add theirs
the same way.
"""

import argparse
import json
import os
import socket
import sys
from collections.abc import Callable, Sequence

Handler = Callable[[argparse.Namespace], int]


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "c4c_site.settings")
    import django

    django.setup()


def cmd_serve(args: argparse.Namespace) -> int:
    """Migrate, then serve the ASGI app with daphne (SSE needs an async server).

    The server's identity (C4C_SERVER_ID) defaults to host:port: it names the process that
    holds a run's lease in logs and the admin (liveness is the lease's, never the name's).
    """
    os.environ.setdefault("C4C_SERVER_ID", f"{socket.gethostname()}:{args.port}")
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


def cmd_exec(args: argparse.Namespace) -> int:
    """Run a workflow through the same runtime as the API; the run appears in the list."""
    try:
        payload = json.loads(args.input)
    except ValueError as exc:
        print(f"--input is not valid JSON: {exc}", file=sys.stderr)
        return 2
    if not isinstance(payload, dict):
        print("--input must be a JSON object", file=sys.stderr)
        return 2
    _setup_django()
    from executions import runtime, store
    from workflows.library import workflow_library

    definition = workflow_library().get(args.workflow_id)
    if definition is None:
        print(f"Workflow '{args.workflow_id}' not found", file=sys.stderr)
        return 2
    try:
        result = runtime.execute(
            definition=definition, input=payload, execution_id=args.execution_id
        ).body
    except store.DuplicateExecution as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['executionId']}  {result['status']}  {result['executionTime']} ms")
        for node_id, output in result["outputs"].items():
            print(f"  {node_id}: {json.dumps(output)}")
        if result.get("error"):
            print(f"  error: {result['error']['message']}")
    return 0 if result["status"] == "completed" else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="c4c", description="Run and watch c4c workflows.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the dashboard and API with daphne")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(handler=cmd_serve)

    listing = sub.add_parser("workflows", help="list workflow definitions")
    listing.set_defaults(handler=cmd_workflows)

    run = sub.add_parser("exec", help="run a workflow and record it like an API run")
    run.add_argument("workflow_id")
    run.add_argument("--input", default="{}", help="the input as a JSON object")
    run.add_argument("--execution-id", help="choose the execution id (default: generated)")
    run.add_argument("--json", action="store_true", help="print the c4c result as JSON")
    run.set_defaults(handler=cmd_exec)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
