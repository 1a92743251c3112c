"""Phase 2: runtime overhead per node, from a linear chain of cheap procedure nodes posted inline.

Two chain lengths give two figures: the plain cost per node of the long chain (everything the
request does, divided by its nodes) and the slope between the lengths, which leaves out the fixed
cost of a request (parsing, validating and snapshotting the definition, the response).
"""

import json
from typing import Any

from bench.client import execute_problem, request, session
from bench.stats import median_of


def linear_workflow(length: int, procedure: str, config: dict[str, Any]) -> dict[str, Any]:
    nodes = []
    for i in range(length):
        node: dict[str, Any] = {
            "id": f"n{i}",
            "type": "procedure",
            "procedureName": procedure,
            "config": config,
        }
        if i + 1 < length:
            node["next"] = f"n{i + 1}"
        nodes.append(node)
    return {
        "id": f"bench-linear-{length}",
        "name": f"Bench linear chain of {length} {procedure} nodes",
        "version": "1.0.0",
        "startNode": "n0",
        "nodes": nodes,
    }


async def chain_run(
    base_url: str, length: int, procedure: str, config: dict[str, Any]
) -> dict[str, Any]:
    payload = json.dumps(
        {"workflow": linear_workflow(length, procedure, config), "input": {}}
    ).encode()
    async with session(base_url, connections=1, timeout_s=300) as client:
        reply = await request(client, "POST", "/workflow/execute", payload)
    problem, execution_id = execute_problem(reply, wait=True)
    document = reply.json() if problem is None else None
    if problem is not None:
        detail = reply.body[:300].decode(errors="replace")
        return {"nodes": length, "error": f"{problem}: {detail}"}
    assert isinstance(document, dict)
    executed = len(document.get("nodesExecuted") or [])
    return {
        "nodes": length,
        "execution_id": execution_id,
        "nodes_executed": executed,
        "request_ms": round(reply.elapsed_ms, 3),
        "execution_time_ms": document.get("executionTime"),
        "response_bytes": len(reply.body),
    }


def per_node_figures(
    long_runs: list[dict[str, Any]], short_runs: list[dict[str, Any]]
) -> dict[str, float | None]:
    long_len = long_runs[0]["nodes"] if long_runs else 0
    short_len = short_runs[0]["nodes"] if short_runs else 0
    long_request = median_of(r.get("request_ms") for r in long_runs)
    short_request = median_of(r.get("request_ms") for r in short_runs)
    long_exec = median_of(r.get("execution_time_ms") for r in long_runs)
    figures: dict[str, float | None] = {
        "request_ms": long_request,
        "execution_time_ms": long_exec,
        "ms_per_node": round(long_request / long_len, 4) if long_request else None,
        "execution_ms_per_node": round(long_exec / long_len, 4) if long_exec else None,
        "slope_ms_per_node": None,
    }
    if long_request and short_request and long_len > short_len:
        figures["slope_ms_per_node"] = round(
            (long_request - short_request) / (long_len - short_len), 4
        )
    return figures
