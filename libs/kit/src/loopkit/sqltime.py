"""Time arithmetic in SQL that reads the same on PostgreSQL and SQLite."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql._typing import _ColumnExpressionArgument
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class seconds_between(FunctionElement[float]):
    """`later - earlier` in seconds (a float; NULL when either is NULL).

    PostgreSQL: EXTRACT(EPOCH FROM later - earlier). SQLite stores times as text, which
    julianday() reads (fractional seconds included)."""

    type = Float()
    name = "seconds_between"
    inherit_cache = True

    def __init__(
        self, later: _ColumnExpressionArgument[Any], earlier: _ColumnExpressionArgument[Any]
    ) -> None:
        super().__init__(later, earlier)


@compiles(seconds_between)
def _default(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = list(element.clauses)
    return (
        f"((julianday({compiler.process(later, **kw)}) - "
        f"julianday({compiler.process(earlier, **kw)})) * 86400.0)"
    )


@compiles(seconds_between, "postgresql")
def _postgres(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = list(element.clauses)
    return (
        f"EXTRACT(EPOCH FROM ({compiler.process(later, **kw)} - {compiler.process(earlier, **kw)}))"
    )
