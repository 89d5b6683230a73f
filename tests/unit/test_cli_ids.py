"""Ids as the CLI takes them: the whole id, or a unique prefix of six characters or more."""

from __future__ import annotations

import pytest
import typer

from cli.ids import pick

JOBS = [
    {"job_id": "d14b8990-aaaa-4000-8000-000000000001"},
    {"job_id": "d14b89ff-bbbb-4000-8000-000000000002"},
    {"job_id": "7e3c0000-cccc-4000-8000-000000000003"},
    {"job_id": "7e3c"},
]


def refused(given: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(typer.Exit) as exited:
        pick("job", given, JOBS, "job_id")
    assert exited.value.exit_code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    return lines[0]


def test_a_whole_id_or_a_unique_prefix_names_one_item() -> None:
    assert pick("job", JOBS[0]["job_id"], JOBS, "job_id") is JOBS[0]
    assert pick("job", "d14b8990", JOBS, "job_id") is JOBS[0]
    assert pick("job", "d14b89f", JOBS, "job_id") is JOBS[1]
    # An id that is whole wins over longer ids it starts, however short it is.
    assert pick("job", "7e3c", JOBS, "job_id") is JOBS[3]


def test_an_ambiguous_prefix_lists_the_candidates(capsys: pytest.CaptureFixture[str]) -> None:
    line = refused("d14b89", capsys)
    assert JOBS[0]["job_id"] in line and JOBS[1]["job_id"] in line
    assert "more characters" in line


def test_a_prefix_needs_six_characters(capsys: pytest.CaptureFixture[str]) -> None:
    assert "at least 6 characters" in refused("d14b8", capsys)


def test_no_match_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert refused("ffffffff", capsys) == "error: no job with id 'ffffffff'"
