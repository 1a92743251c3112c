"""Live fan-out: the events a run sends, the bounded replay buffer, and the two SSE streams.

`events` is the one module that sends; the runtime is the only caller of its `emit_*`
functions, so every event follows the write it reports. May import the executions core and
`workflows`; never `executions.api` or `executions.dashboard`.
"""
