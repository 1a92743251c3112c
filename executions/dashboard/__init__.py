"""The dashboard's pages: executions list, one execution (graph, timeline, trace), workflows.

Owns the page views and their live partials, the graph layout and the timeline geometry.
Reads through the executions core's QuerySets and serializers; never imports
`executions.api` or `executions.live` (the pages' scripts open the SSE streams by URL).
"""
