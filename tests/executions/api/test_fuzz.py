"""Schemathesis against /openapi.json on a live daphne: no 5xx, every answer as documented.

Every operation of the document gets FUZZ_EXAMPLES generated requests (valid and invalid ones),
from a fixed seed under CI so a failure replays; set C4C_FUZZ_EXAMPLES=500 locally to dig
deeper with fresh randomness. The two SSE streams are left out: they never end, and their
behaviour is pinned by the live tests.
"""

import os
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err, Result
from schemathesis.errors import InvalidSchema
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import DaphneServer

pytestmark = pytest.mark.slow

IN_CI = bool(os.environ.get("CI"))
FUZZ_EXAMPLES = int(os.environ.get("C4C_FUZZ_EXAMPLES", "25"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaphneServer]:
    # custom.delay may be asked for its 10-minute maximum: scaled down so a case stays short.
    server = DaphneServer(Path(tmp_path_factory.mktemp("fuzz")), env={"C4C_DELAY_SCALE": "0.0001"})
    server.start()
    try:
        yield server
    finally:
        server.stop()


# Parameters, request body, security and schema types: this test reads none of them.
Operation = APIOperation[Any, Any, Any, Any]


def _operation(result: Result[Operation, InvalidSchema]) -> Operation:
    """The operation, or its schema error raised."""
    if isinstance(result, Err):
        raise result.err()
    return result.ok()


def _fuzz(operation: Operation, mode: GenerationMode, base_url: str) -> str | None:
    """None if every generated case passed the checks, else the first failure, explained."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=FUZZ_EXAMPLES,
        derandomize=IN_CI,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )
    def run(case: schemathesis.Case[Operation]) -> None:
        case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=30)

    try:
        run()
    except Unsatisfiable:
        return None  # no invalid request exists for an operation that takes nothing
    except Exception as exc:
        return f"{operation.label} ({mode.value}): {exc}"
    return None


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_generated_request_gets_a_5xx_or_an_undocumented_answer(
    fuzz_server: DaphneServer, mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzz_server.url}/openapi.json")
    operations = [_operation(r) for r in schema.exclude(path_regex=r"stream$").get_all_operations()]
    assert {"GET /health", "POST /rpc/math.add", "POST /workflow/execute"} <= {
        o.label for o in operations
    }
    failures = [f for op in operations if (f := _fuzz(op, mode, fuzz_server.url))]
    assert not failures, "\n\n".join(failures)


def test_docs_page_and_every_asset_it_loads_come_from_this_server(
    fuzz_server: DaphneServer,
) -> None:
    with urllib.request.urlopen(f"{fuzz_server.url}/docs", timeout=10) as response:
        page = response.read().decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert "/static/ninja/swagger-ui-bundle.js" in assets
    for asset in assets:
        assert asset.startswith("/static/"), asset
        with urllib.request.urlopen(f"{fuzz_server.url}{asset}", timeout=10) as response:
            assert response.status == 200
            assert response.read(1)
