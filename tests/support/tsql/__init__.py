"""Would SQL Server take this statement? A strict offline T-SQL check.

Two parts, since no offline parser is strict on its own:

- **The grammar**: ANTLR's grammars-v4 T-SQL parser (the npm package ``antlr4ts-sql``, run by
  ``check.js`` under Node, installed by ``make tsql``). Of the parsers tried it is the
  strictest: it refuses ``LIMIT``, ``ON CONFLICT``, ``ILIKE``, ``::`` casts, ``RETURNING``,
  ``FOR UPDATE`` and ``NULLS LAST``, and takes ``MERGE``, ``OFFSET … FETCH``, ``TOP`` with
  table hints and ``EXEC``. (sqlglot's and sqlfluff's T-SQL readers accept most of those;
  node-sql-parser's ``transactsql`` refuses a valid ``MERGE``.)
- **A deny-list** of what SQL Server lacks that the grammar lets through: ``TRUE``/``FALSE``
  literals (it reads them as column names), ``||``, ``$1`` (a money literal to it), PostgreSQL
  and SQLite functions and types, deprecated ``TEXT``/``NTEXT``/``IMAGE`` columns, and the
  rest below, each matched outside string literals and comments.

Placeholders: SQLAlchemy's ``mssql+pyodbc`` writes ``?``; the ODBC driver sends them to SQL
Server as ``@P1``, ``@P2`` …, and so they are renamed before parsing. A few words the grammar
treats as keywords are not reserved in SQL Server (:data:`NOT_RESERVED`; SQLAlchemy brackets
every reserved one), and so are bracketed before parsing when they name a column.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from sqlalchemy.dialects.mssql import pyodbc as mssql_pyodbc
from sqlalchemy.sql import ClauseElement

from tests.support.services import unavailable

REPO = Path(__file__).resolve().parents[3]
NODE_MODULES = REPO / ".tools" / "tsql" / "node_modules"
CHECKER = Path(__file__).with_name("check.js")
MAX_PARAMETERS = 2100  # SQL Server's limit per request (error 8003 past it)
# Keywords of the grammar (FOR XML RAW) that SQL Server's reserved-word list does not have.
NOT_RESERVED = ("raw",)
_NOT_RESERVED = re.compile(rf"\b({'|'.join(NOT_RESERVED)})\b", re.IGNORECASE)

# What SQL Server does not have, as (why, pattern).
DENIED: list[tuple[str, str]] = [
    ("ON CONFLICT is PostgreSQL/SQLite (T-SQL: MERGE)", r"\bON\s+CONFLICT\b"),
    ("ILIKE is PostgreSQL", r"\bILIKE\b"),
    (":: casts are PostgreSQL (T-SQL: CAST)", r"::"),
    ("RETURNING is PostgreSQL/SQLite (T-SQL: OUTPUT)", r"\bRETURNING\b"),
    ("LIMIT is not T-SQL (TOP, or ORDER BY … OFFSET … FETCH)", r"\bLIMIT\b"),
    (
        "OFFSET needs ORDER BY before it and ROWS after it",
        r"^(?!.*\bORDER\s+BY\b.*\bOFFSET\s+\S+\s+ROWS?\b).*\bOFFSET\b",
    ),
    (
        "FOR UPDATE/SHARE and SKIP LOCKED are not T-SQL (table hints are)",
        r"\bFOR\s+(UPDATE|SHARE|NO\s+KEY)\b|\bSKIP\s+LOCKED\b",
    ),
    ("NULLS FIRST/LAST is not T-SQL", r"\bNULLS\s+(FIRST|LAST)\b"),
    ("ARRAY is PostgreSQL", r"\bARRAY\s*[\[(]"),
    ("|| concatenation is not in SQL Server 2022 (use + or CONCAT)", r"\|\|"),
    ("TRUE/FALSE are not T-SQL literals (use 1/0)", r"\b(TRUE|FALSE)\b"),
    (
        "$n, %s, %(name)s and :name placeholders are not ODBC's",
        r"\$\d+|%\(?\w*\)?s\b|(?<![:\w]):[A-Za-z_]\w*",
    ),
    (
        "json_each/json_extract/jsonb are SQLite's and PostgreSQL's (T-SQL: OPENJSON)",
        r"\bjson_(each|extract|array_elements\w*)\b|\bjsonb\b",
    ),
    (
        "PostgreSQL functions",
        r"\b(now|date_trunc|generate_series|to_char|string_to_array)\s*\(|\bEXTRACT\s*\(|\bpg_\w+",
    ),
    (
        "PostgreSQL/SQLite types",
        r"\b(SERIAL|BIGSERIAL|BOOLEAN|BYTEA|TIMESTAMPTZ|DOUBLE\s+PRECISION)\b",
    ),
    ("TEXT, NTEXT and IMAGE are deprecated (NVARCHAR(MAX), VARBINARY(MAX))", r"\b(N?TEXT|IMAGE)\b"),
    (
        "IF NOT EXISTS in CREATE is not T-SQL",
        r"\bCREATE\s+(UNIQUE\s+)?(TABLE|INDEX)\s+IF\s+NOT\s+EXISTS\b",
    ),
    (
        "SQLite statements",
        r"\bINSERT\s+OR\s+(REPLACE|IGNORE)\b|\bREPLACE\s+INTO\b|\bAUTOINCREMENT\b"
        r"|\bPRAGMA\b|\bBEGIN\s+(IMMEDIATE|DEFERRED|EXCLUSIVE)\b",
    ),
    ("DISTINCT ON and LATERAL are PostgreSQL", r"\bDISTINCT\s+ON\b|\bLATERAL\b"),
    ("VACUUM/ANALYZE are PostgreSQL", r"^\s*(VACUUM|ANALYZE)\b"),
    ("backquoted names are MySQL", r"`"),
]
_DENIED = [(why, re.compile(pattern, re.IGNORECASE | re.DOTALL)) for why, pattern in DENIED]

# String literals ('…', N'…', with '' inside), comments, bracketed and quoted identifiers.
_OPAQUE = re.compile(r"N?'(?:[^']|'')*'|--[^\n]*|/\*.*?\*/|\[[^\]]*\]|\"[^\"]*\"", re.DOTALL)


def _blanked(sql: str) -> str:
    """``sql`` with literals, comments and quoted names blanked out."""
    return _OPAQUE.sub(lambda m: " " if m.group().startswith(("--", "/*")) else "_", sql)


def placeholders(sql: str) -> int:
    """The ``?`` placeholders of ``sql``: the parameters SQL Server will get."""
    return _blanked(sql).count("?")


def as_sent(sql: str) -> str:
    """``sql`` with its ``?`` placeholders named as the ODBC driver sends them."""
    out: list[str] = []
    last, n = 0, 0
    for literal in [*_OPAQUE.finditer(sql), None]:
        end = literal.start() if literal else len(sql)
        piece = _NOT_RESERVED.sub(r"[\1]", sql[last:end])
        while "?" in piece:
            n += 1
            piece = piece.replace("?", f"@P{n}", 1)
        out.append(piece)
        if literal:
            out.append(literal.group())
            last = literal.end()
    return "".join(out)


def denied(sql: str) -> list[str]:
    """Why SQL Server would refuse ``sql``, by the deny-list alone."""
    text = _blanked(sql)
    return [why for why, pattern in _DENIED if pattern.search(text)]


# The dialect as the service's engine has it on SQL Server 2012 or later (Azure SQL too):
# pyodbc's "?" placeholders, OFFSET … FETCH, NVARCHAR(max).
MSSQL = mssql_pyodbc.dialect(paramstyle="qmark")  # type: ignore[no-untyped-call]
MSSQL.server_version_info = (16, 0, 1000)
MSSQL._setup_version_attributes()


def as_tsql(statement: ClauseElement) -> str:
    """``statement`` compiled as the service sends it to SQL Server."""
    return str(statement.compile(dialect=MSSQL, compile_kwargs={"render_postcompile": True}))


_parsed: dict[str, str | None] = {}  # statement -> its grammar error, for this test run


def grammar_errors(statements: list[str]) -> list[str | None]:
    """The T-SQL grammar's first syntax error of each statement (None when it parses). The
    grammar takes a second or two to load, so statements are parsed in one run of it and
    remembered for the rest of the test run."""
    new = sorted({s for s in statements if s not in _parsed})
    if new:
        node = shutil.which("node")
        if node is None or not NODE_MODULES.is_dir():
            unavailable("the T-SQL grammar (Node.js and `make tsql`)")
        answer = subprocess.run(
            [str(node), str(CHECKER), str(NODE_MODULES)],
            input=json.dumps([as_sent(s) for s in new]),
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
        _parsed.update(zip(new, json.loads(answer.stdout), strict=True))
    return [_parsed[s] for s in statements]


def problems(statements: list[str]) -> dict[str, list[str]]:
    """Every statement SQL Server would refuse, with why (grammar and deny-list)."""
    unique = sorted(set(statements))
    found: dict[str, list[str]] = {}
    for sql, error in zip(unique, grammar_errors(unique), strict=True):
        why = denied(sql) + ([f"T-SQL grammar: {error}"] if error else [])
        if why:
            found[sql] = why
    return found
