"""Files for the tables of ``tests/support/catalogs/shop.toml``, each with bad rows of every
rule its columns have, and what a load of them must leave: the keys stored and the line and rule
of each rejection.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

REGIONS = 20
STORES = 40
PRODUCTS = 30
ORDERS = 200
_BOOLEANS = ("true", "FALSE", "1", "0", "True", "false")


@dataclass
class Expected:
    """A file's bytes, the keys a load of it stores, and the rule each bad line breaks."""

    body: bytes
    keys: set[int] = field(default_factory=set)
    bad: dict[int, str] = field(default_factory=dict)


def _build(
    delimiter: str,
    good: Iterator[tuple[int, list[str]]],
    bad: list[tuple[list[str], str]],
    header: str | None = None,
) -> Expected:
    """Good rows first, then the bad ones, each line joined by ``delimiter``."""
    lines = [header] if header is not None else []
    out = Expected(b"")
    for key, fields in good:
        lines.append(delimiter.join(fields))
        out.keys.add(key)
    for fields, rule in bad:
        lines.append(delimiter.join(fields))
        out.bad[len(lines)] = rule
    out.body = ("\n".join(lines) + "\n").encode()
    return out


def regions() -> Expected:
    return _build(
        ";",
        ((i, [str(i), f"Region {i}"]) for i in range(1, REGIONS + 1)),
        [
            (["x1", "Bad"], "not_integer"),
            (["3", "Twice"], "duplicate_id"),
            (["21", "Region 1"], "duplicate_value"),
            (["22", "R" * 41], "too_long"),
            (["23", ""], "required"),
            (["24", "a", "b"], "field_count"),
        ],
    )


def stores() -> Expected:
    def row(i: int) -> list[str]:
        day = f"2020-01-{i % 28 + 1:02d}"
        return [f"S{i:03d}", str(i), str(i % REGIONS + 1), day, _BOOLEANS[i % len(_BOOLEANS)]]

    return _build(
        ",",
        ((i, row(i)) for i in range(1, STORES + 1)),
        [
            (["S041", "41", "99", "2020-01-01", "true"], "unknown_reference"),
            (["S042", "42", "1", "2020-02-30", "true"], "invalid_date"),
            (["S043", "43", "1", "01/02/2020", "true"], "not_date"),
            (["S044", "44", "1", "2020-01-01", "yes"], "not_boolean"),
            (["TOOLONGCODE13", "45", "1", "2020-01-01", "true"], "too_long"),
        ],
    )


def products() -> Expected:
    def row(i: int) -> list[str]:
        weight = f"{i * 0.25}" if i % 2 else ""
        discontinued = ("NULL", "true", "0")[i % 3]
        return [str(i), f"SKU-{i}", f"{i}.{i % 100:02d}", weight, discontinued]

    return _build(
        "|",
        ((i, row(i)) for i in range(1, PRODUCTS + 1)),
        [
            (["31", "SKU-1", "1.00", "", "NULL"], "duplicate_value"),
            (["32", "SKU-32", "abc", "", "NULL"], "not_decimal"),
            (["33", "SKU-33", "123456789.00", "", "NULL"], "too_many_digits"),
            (["34", "SKU-34", "1.234", "", "NULL"], "too_many_digits"),
            (["35", "SKU-35", "1.00", "heavy", "NULL"], "not_float"),
            (["36", "SKU-36", "1.00", "", "maybe"], "not_boolean"),
            (["37", "SKU-37", "", "", "NULL"], "required"),
        ],
        header="id|sku|price|weight_kg|discontinued",
    )


def orders() -> Expected:
    def row(i: int) -> list[str]:
        zone = ("", "Z", "+02:00")[i % 3]  # no zone: the column assumes UTC
        placed = f"2021-{i % 12 + 1:02d}-{i % 28 + 1:02d}T10:00:00{zone}"
        note = "" if i % 4 == 0 else f'"Note, {i}"'
        return [str(i), str(i % STORES + 1), placed, note]

    return _build(
        ",",
        ((i, row(i)) for i in range(1, ORDERS + 1)),
        [
            (["201", "999", "2021-01-01T00:00:00Z", ""], "unknown_reference"),
            (["202", "1", "yesterday", ""], "not_iso8601"),
            (["203", "1", "2021-01-01T00:00:00Z", "x" * 201], "too_long"),
            (["0", "1", "2021-01-01T00:00:00Z", ""], "not_positive"),
        ],
    )


def order_line(i: int) -> list[str]:
    """The valid line with id ``i``."""
    shipped = "" if i % 5 == 0 else f"2021-03-{i % 28 + 1:02d}"
    delivered = "-" if i % 3 == 0 else f"2021-03-{i % 28 + 1:02d}T12:00:00Z"
    return [
        str(i),
        str(i % ORDERS + 1),
        str(i % PRODUCTS + 1),
        str(i % 7 - 3),
        f"{i % 1000}.{i % 10000:04d}",
        shipped,
        delivered,
    ]


def _bad_order_line(i: int, kind: int) -> tuple[list[str], str]:
    fields = order_line(i)
    changes = {
        0: (1, "9999", "unknown_reference"),
        1: (2, "999", "unknown_reference"),
        2: (3, "two", "not_integer"),
        3: (3, "99999999999999999999", "out_of_range"),
        4: (4, "1.23456", "too_many_digits"),
        5: (6, "2021-03-01T12:00:00", "missing_timezone"),
        6: (5, "2021-02-30", "invalid_date"),
        7: (0, str(i - 1), "duplicate_id"),  # the id of the (good) line before
    }
    column, value, rule = changes[kind % len(changes)]
    fields[column] = value
    return fields, rule


def order_lines(rows: int, bad_every: int) -> Expected:
    """``rows`` lines, line n with id n, every ``bad_every``-th line bad (each rule in turn)."""
    out = Expected(b"")
    lines: list[str] = []
    for i in range(1, rows + 1):
        if i % bad_every == 0:
            fields, rule = _bad_order_line(i, i // bad_every)
            out.bad[i] = rule
        else:
            fields = order_line(i)
            out.keys.add(i)
        lines.append("\t".join(fields))
    out.body = ("\n".join(lines) + "\n").encode()
    return out


def shop_files(order_line_rows: int = 2000, bad_every: int = 50) -> dict[str, Expected]:
    """Every table's file, parents first."""
    return {
        "regions": regions(),
        "stores": stores(),
        "orders": orders(),
        "products": products(),
        "order_lines": order_lines(order_line_rows, bad_every),
    }
