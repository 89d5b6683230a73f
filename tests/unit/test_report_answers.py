"""The reports answer JSON written from their rows' dataclasses, as their documented models
would write it."""

from __future__ import annotations

import json
from dataclasses import asdict, fields

import orjson
from pydantic import BaseModel

from api.schemas import (
    DepartmentHiresRow,
    DepartmentsAboveMeanOut,
    HiresByQuarterOut,
    HiresByQuarterRow,
)
from common.stores.reports import DepartmentHires, QuarterRow


def as_starlette_writes(model: BaseModel) -> bytes:
    """The bytes FastAPI answered when the routes returned the models themselves."""
    content = model.model_dump(mode="json")
    return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


def test_each_row_has_the_fields_of_its_documented_model_in_order() -> None:
    assert [f.name for f in fields(QuarterRow)] == list(HiresByQuarterRow.model_fields)
    assert [f.name for f in fields(DepartmentHires)] == list(DepartmentHiresRow.model_fields)


def test_the_answers_are_the_bytes_the_models_give() -> None:
    # Given rows with names outside ASCII, and a mean that is not whole
    rows = [QuarterRow("Ingeniería", "Ökonom 😀", 1, 0, 2**40, 3)]
    above = [DepartmentHires(7, 'Dépt. "quoted"', 5), DepartmentHires(2, "B\\", 4)]
    mean = 10 / 3
    # Then the dataclasses dumped as they are match the models dumped as FastAPI did
    model = HiresByQuarterOut(year=2021, rows=[HiresByQuarterRow(**asdict(r)) for r in rows])
    assert orjson.dumps({"year": 2021, "rows": rows}) == as_starlette_writes(model)
    departments = DepartmentsAboveMeanOut(
        year=2021, mean=mean, rows=[DepartmentHiresRow(**asdict(r)) for r in above]
    )
    assert orjson.dumps({"year": 2021, "mean": mean, "rows": above}) == as_starlette_writes(
        departments
    )
    assert orjson.dumps({"year": 2021, "mean": 0.0, "rows": []}) == as_starlette_writes(
        DepartmentsAboveMeanOut(year=2021, mean=0.0, rows=[])
    )
