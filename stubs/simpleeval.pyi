import ast
from collections.abc import Callable
from typing import Any

DEFAULT_OPERATORS: dict[type[ast.AST], Callable[..., Any]]

class SimpleEval:
    operators: dict[type[ast.AST], Callable[..., Any]]
    functions: dict[str, Callable[..., Any]]
    names: dict[str, Any]
    # The evaluator of each node type; a subclass adds, removes or replaces entries.
    nodes: dict[type[ast.AST], Callable[[Any], Any]]
    def __init__(
        self,
        operators: dict[type[ast.AST], Callable[..., Any]] | None = None,
        functions: dict[str, Callable[..., Any]] | None = None,
        names: dict[str, Any] | None = None,
        allowed_attrs: dict[type, set[str]] | None = None,
    ) -> None: ...
    def eval(self, expr: str, previously_parsed: ast.AST | None = None) -> Any: ...
    def _eval(self, node: ast.AST) -> Any: ...

class EvalWithCompoundTypes(SimpleEval): ...
