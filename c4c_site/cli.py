"""The `c4c` console command: serve the dashboard, list workflows, run one from the shell,
prune old runs, list and run schedules, create the first user, and issue, list and revoke API
tokens.

Each subcommand lives in a small function registered on the parser; later features add theirs
the same way.
"""

import argparse
import json
import os
import socket
import sys
from collections.abc import Callable, Sequence
from datetime import datetime

Handler = Callable[[argparse.Namespace], int]


def _setup_django() -> None:
    """Once per process: setting Django up again configures logging again, bound to whatever
    sys.stderr is at that moment (a test's captured stream, closed once that test ends)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "c4c_site.settings")
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()


def cmd_serve(args: argparse.Namespace) -> int:
    """Migrate, then serve the ASGI app with daphne (SSE needs an async server): in this process
    (--workers 1), or in N processes on one socket under a supervisor (c4c_site.supervisor).

    The server's identity (C4C_SERVER_ID) defaults to host:port: it names the process that
    holds a run's lease in logs and the admin (liveness is the lease's, never the name's).
    Settings learn the bind address (C4C_BIND_HOST), which turns authentication on beyond
    loopback; C4C_REQUIRE_AUTH=false there is refused before anything starts (exit code 2).
    """
    from accounts.binding import is_loopback, public_bind_refusal, turned_off

    from .malloc import limit_arenas

    limit_arenas()
    if not is_loopback(args.host) and turned_off(os.environ.get("C4C_REQUIRE_AUTH")):
        print(f"c4c serve: {public_bind_refusal(args.host)}", file=sys.stderr)
        return 2
    os.environ["C4C_BIND_HOST"] = args.host
    os.environ.setdefault("C4C_SERVER_ID", f"{socket.gethostname()}:{args.port}")
    if args.fd is not None:
        return _serve_child(args)
    workers = args.workers if args.workers is not None else _default_workers()
    if workers < 1:
        print("c4c serve: --workers must be at least 1", file=sys.stderr)
        return 2
    if workers > 1 and ":" in args.host:
        # daphne adopts an inherited socket as IPv4 only (its `fd:` endpoint has no family).
        print("c4c serve: an IPv6 address is served by one process", file=sys.stderr)
        workers = 1
    _setup_django()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    if workers > 1:
        from .supervisor import Supervisor

        redis_events = hasattr(settings, "EVENTSTREAM_REDIS")
        return Supervisor(
            host=args.host, port=args.port, workers=workers, redis_events=redis_events
        ).run()
    from daphne.cli import CommandLineInterface

    CommandLineInterface().run(
        ["--bind", args.host, "--port", str(args.port), "c4c_site.asgi:application"]
    )
    return 0


def _default_workers() -> int:
    """C4C_WORKERS, else one serving process per core."""
    configured = os.environ.get("C4C_WORKERS", "").strip()
    return int(configured) if configured.isdigit() else os.cpu_count() or 1


def _serve_child(args: argparse.Namespace) -> int:
    """One of a supervisor's processes: daphne on the listening socket it inherited (`--fd`);
    the supervisor migrated already."""
    from .supervisor import die_with_parent

    if args.parent is not None:
        die_with_parent(args.parent)
    _setup_django()
    from daphne.cli import CommandLineInterface

    CommandLineInterface().run(["--fd", str(args.fd), "c4c_site.asgi:application"])
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


def cmd_prune(args: argparse.Namespace) -> int:
    """Delete finished runs past their retention, or --older-than AGE (the `prune` command)."""
    _setup_django()
    from django.core.management import call_command
    from django.core.management.base import CommandError

    try:
        call_command("prune", older_than=args.older_than, dry_run=args.dry_run)
    except CommandError as exc:
        print(f"c4c prune: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_schedules(args: argparse.Namespace) -> int:
    """List schedules with their next slots, sync the ones declared in code, or run a scheduler
    in the foreground (the `schedules` command)."""
    _setup_django()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    call_command("schedules", args.action, seconds=args.seconds)
    return 0


def cmd_createsuperuser(args: argparse.Namespace) -> int:
    """Migrate, then Django's createsuperuser: the first account."""
    _setup_django()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    options = {"username": args.username, "email": args.email}
    call_command(
        "createsuperuser",
        interactive=not args.noinput,
        **{name: value for name, value in options.items() if value},
    )
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    """Issue a token for a user; the token is printed once, alone on stdout, never again."""
    _setup_django()
    from django.contrib.auth import get_user_model

    from accounts.models import ApiToken

    user_model = get_user_model()
    user = user_model._default_manager.filter(**{user_model.USERNAME_FIELD: args.username}).first()
    if user is None:
        print(f"No user named '{args.username}'", file=sys.stderr)
        return 2
    row, token = ApiToken.objects.issue(user, args.name)
    print(token)
    print(
        f"Token {row} for {args.username}: shown only this once. "
        "Send it as 'Authorization: Bearer <token>'.",
        file=sys.stderr,
    )
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    _setup_django()
    from django.contrib.auth import get_user_model

    from accounts.models import TOKEN_PREFIX, ApiToken

    tokens = ApiToken.objects.select_related("user").order_by("created_at", "id")
    if args.username:
        tokens = tokens.filter(**{f"user__{get_user_model().USERNAME_FIELD}": args.username})

    def when(moment: datetime | None) -> str:
        return f"{moment:%Y-%m-%d %H:%M}" if moment else "-"

    rows = [
        (
            str(t.pk),
            f"{TOKEN_PREFIX}{t.prefix}",
            t.user.get_username(),
            t.name or "-",
            when(t.created_at),
            when(t.last_used_at),
            f"revoked {when(t.revoked_at)}" if t.revoked_at else "active",
        )
        for t in tokens
    ]
    header = ("ID", "PREFIX", "USER", "NAME", "CREATED", "LAST USED", "STATE")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    _setup_django()
    from accounts.models import ApiToken

    token = ApiToken.objects.by_reference(args.token)
    if token is None:
        print(f"No token with prefix or id '{args.token}'", file=sys.stderr)
        return 2
    if not token.revoke():
        print(f"Token {token} was already revoked")
        return 0
    print(f"Revoked token {token}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="c4c", description="Run and watch c4c workflows.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the dashboard and API with daphne")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers",
        type=int,
        help="serving processes on the one socket (default: C4C_WORKERS, else one per core)",
    )
    # A supervisor's child: the inherited listening socket, and the supervisor to die with.
    serve.add_argument("--fd", type=int, help=argparse.SUPPRESS)
    serve.add_argument("--parent", type=int, help=argparse.SUPPRESS)
    serve.set_defaults(handler=cmd_serve)

    listing = sub.add_parser("workflows", help="list workflow definitions")
    listing.set_defaults(handler=cmd_workflows)

    run = sub.add_parser("exec", help="run a workflow and record it like an API run")
    run.add_argument("workflow_id")
    run.add_argument("--input", default="{}", help="the input as a JSON object")
    run.add_argument("--execution-id", help="choose the execution id (default: generated)")
    run.add_argument("--json", action="store_true", help="print the c4c result as JSON")
    run.set_defaults(handler=cmd_exec)

    prune = sub.add_parser("prune", help="delete finished runs past their retention")
    prune.add_argument(
        "--older-than", metavar="AGE", help="every finished run older than AGE (12h, 30d, 2w)"
    )
    prune.add_argument("--dry-run", action="store_true", help="print what would go; delete none")
    prune.set_defaults(handler=cmd_prune)

    schedules = sub.add_parser("schedules", help="list, sync or run the cron schedules")
    schedules.add_argument("action", nargs="?", choices=["list", "sync", "run"], default="list")
    schedules.add_argument(
        "--seconds", type=float, help="with run: stop after this long (default: until stopped)"
    )
    schedules.set_defaults(handler=cmd_schedules)

    first = sub.add_parser(
        "createsuperuser", help="create the first account (Django's createsuperuser)"
    )
    first.add_argument("--username")
    first.add_argument("--email")
    first.add_argument(
        "--noinput",
        action="store_true",
        help="ask nothing: the password comes from DJANGO_SUPERUSER_PASSWORD",
    )
    first.set_defaults(handler=cmd_createsuperuser)

    token = sub.add_parser("token", help="issue, list and revoke API tokens")
    tokens = token.add_subparsers(dest="token_command", required=True)
    create = tokens.add_parser("create", help="issue a token for a user (printed once)")
    create.add_argument("username")
    create.add_argument("--name", default="", help="what the token is for")
    create.set_defaults(handler=cmd_token_create)
    listed = tokens.add_parser("list", help="list tokens, of one user or of everyone")
    listed.add_argument("username", nargs="?")
    listed.set_defaults(handler=cmd_token_list)
    revoke = tokens.add_parser("revoke", help="revoke a token by its prefix or id")
    revoke.add_argument("token", metavar="prefix-or-id")
    revoke.set_defaults(handler=cmd_token_revoke)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
