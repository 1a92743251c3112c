"""The `c4c` console command: serve the dashboard, list workflows, run one from the shell,
prune old runs, create the first user, and issue, list and revoke API tokens.

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
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "c4c_site.settings")
    import django

    django.setup()


def cmd_serve(args: argparse.Namespace) -> int:
    """Migrate, then serve the ASGI app with daphne (SSE needs an async server).

    The server's identity (C4C_SERVER_ID) defaults to host:port: it names the process that
    holds a run's lease in logs and the admin (liveness is the lease's, never the name's).
    Settings learn the bind address (C4C_BIND_HOST), which turns authentication on beyond
    loopback; C4C_REQUIRE_AUTH=false there is refused before anything starts (exit code 2).
    """
    from accounts.binding import is_loopback, public_bind_refusal, turned_off

    if not is_loopback(args.host) and turned_off(os.environ.get("C4C_REQUIRE_AUTH")):
        print(f"c4c serve: {public_bind_refusal(args.host)}", file=sys.stderr)
        return 2
    os.environ["C4C_BIND_HOST"] = args.host
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
