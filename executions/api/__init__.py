"""The c4c HTTP contract under /workflow/: request parsing and thin views over the core.

Owns request bodies and query strings (`requests`), the JSON views (`views`) and their URLs.
May import the executions core (models, store, runtime, dispatch, serializers, cursors) and
`workflows`; never `executions.live` or `executions.dashboard`.
"""
