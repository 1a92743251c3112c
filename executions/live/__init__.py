"""Live fan-out: the events a run sends, the bounded replay buffer, the two SSE streams, and the
newest page of the list that the list stream's c4c view sends with every update (`pages`).

`events` is the one module that sends; the runtime is the only caller of its `emit_*`
functions, so every event follows the write it reports. May import the executions core and
`workflows`; never `executions.api` or `executions.dashboard`.
"""
