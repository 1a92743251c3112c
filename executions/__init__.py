"""What happened, and keeping it going: executions, their node runs and spans.

The core lives at the top: `models` (tables, statuses and their transition tables, every read as
a QuerySet method), `store` (the only writer), `runtime` (runs a definition; the only code that
pairs a write with its events), `dispatch` (the in-process run pool or Celery), `tasks`,
`tracing`, `serializers` (one JSON shape per concept), `cursors` and `payloads`. Three edges
import the core and never each other: `api` (the c4c JSON contract), `live` (events, replay
buffer, SSE streams) and `dashboard` (pages). Imports `workflows`; `workflows` never imports this.
"""
