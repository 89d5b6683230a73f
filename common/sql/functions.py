"""SQL functions the summary needs, worded for each database: the year or month of a
timestamp, and a sum of counts that stays an integer and fast."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Double, FunctionElement, Integer, cast, extract, func
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler


class _DatePart(FunctionElement[int]):
    """The year or month of a timestamp as an integer: ``YEAR(x)``/``MONTH(x)`` on SQL Server
    (built-ins that stand-ins can provide too), ``CAST(EXTRACT(…) AS INTEGER)`` elsewhere."""

    type = Integer()
    inherit_cache = True
    part = ""


class Year(_DatePart):
    name = part = "year"
    inherit_cache = True


class Month(_DatePart):
    name = part = "month"
    inherit_cache = True


@compiles(_DatePart)
def _extracted(element: _DatePart, compiler: SQLCompiler, **kw: Any) -> str:
    (at,) = element.clauses
    return compiler.process(cast(extract(element.part, at), Integer), **kw)


@compiles(_DatePart, "mssql")
def _tsql(element: _DatePart, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{element.part.upper()}({compiler.process(element.clauses, **kw)})"


class SumOfHires(FunctionElement[int]):
    """``SUM`` of hire counts, as an integer. PostgreSQL sums ``BIGINT`` as ``NUMERIC``, in
    arbitrary precision and about twice as slowly as a float; a double adds integers exactly
    up to 2**53, far beyond any count of hires, so there it sums doubles and casts back.
    SQLite and SQL Server sum integers as integers."""

    type = BigInteger()
    name = "sum_of_hires"
    inherit_cache = True


@compiles(SumOfHires)
def _sum(element: SumOfHires, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(func.sum(*element.clauses), **kw)


@compiles(SumOfHires, "postgresql")
def _sum_of_doubles(element: SumOfHires, compiler: SQLCompiler, **kw: Any) -> str:
    (hires,) = element.clauses
    return compiler.process(cast(func.sum(cast(hires, Double)), BigInteger), **kw)
