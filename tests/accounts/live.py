"""A real daphne (`c4c serve`) with C4C_REQUIRE_AUTH=true and three users, for the live tests
here and the signed-in browser test: "viewer" and "operator" (in the migration's groups of those
names) and "nobody" (no permission), each with the password `password`."""

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, DaphneServer

USERS = """
from django.contrib.auth.models import Group, User
for name, group in [("viewer", "viewer"), ("operator", "operator"), ("nobody", None)]:
    user = User.objects.create_user(name, password="password")
    if group:
        user.groups.add(Group.objects.get(name=group))
"""


def run_against(server: DaphneServer, *args: str) -> str:
    """A command run on the server's database; its stdout."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{server.db_path}"}
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def secured_server(workdir: Path) -> DaphneServer:
    """Started, with its users made; the caller stops it."""
    server = DaphneServer(workdir, env={"C4C_REQUIRE_AUTH": "true", "C4C_DELAY_SCALE": "0.1"})
    server.start()
    try:
        run_against(server, sys.executable, "manage.py", "shell", "-c", USERS)
    except BaseException:
        server.stop()
        raise
    return server
