"""The JSON bodies of the bulk endpoints (executions.bulk builds them), for /openapi.json.

Beside executions.api.schemas, in the same style: camelCase c4c-style names, open to fields
added later.
"""

from typing import Literal

from pydantic import Field

from .schemas import Body, ErrorBody


class BulkCount(Body):
    action: Literal["cancel", "rerun"]
    filter: str = Field(description="The runs counted, in words: what a confirmation states.")
    count: int = Field(description="Runs the action would take (newest first).")
    running: int = Field(description="Of them, still going (a re-run skips these).")
    finished: int = Field(description="Of them, ended (a cancel skips these).")
    expect: str = Field(description="Send it back as POST .../bulk `expect` to confirm.")


class BulkAccepted(Body):
    bulkId: str
    count: int = Field(description="Runs the action takes, as counted.")
    status: Literal["running", "completed", "failed"]
    location: str = Field(description="Where its progress is read.")


class BulkChanged(ErrorBody):
    count: int = Field(description="Runs matching now.")
    expect: str = Field(description="The token for the runs matching now.")


class BulkProgress(Body):
    bulkId: str
    action: Literal["cancel", "rerun"]
    filter: str
    status: Literal["running", "completed", "failed"]
    count: int
    done: int = Field(description="Runs handled so far: succeeded + skipped + failed.")
    succeeded: int = Field(description="Cancelled, or re-run.")
    skipped: int = Field(description="Already ended (cancel) or still going (re-run).")
    failed: int
    errors: list[str] = Field(description="The first failures, '<executionId>: <why>'.")
    startedRuns: list[str] = Field(description="The executions a re-run started.")
    startedAt: str
    endedAt: str | None
