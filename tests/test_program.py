"""The exam program file."""
from __future__ import annotations

import tomllib

import pytest

from itembank.program import PROGRAMS_DIR, ProgramError, load_program, parse_program


def test_the_sample_program_is_the_it_passport_blueprint():
    program = load_program()
    assert program.items_per_sitting == 100
    assert [(f.code, f.scored, f.pretest) for f in program.fields] == [
        ("strategy", 32, 3), ("management", 18, 2), ("technology", 42, 3)]
    assert [c.number for c in program.categories] == list(range(1, 24))
    assert program.field_of_category(7) == "strategy" and program.field_of_category(23) == "technology"
    assert program.duration_minutes == 120
    assert (program.pass_rule.total_minimum, program.pass_rule.field_minimum) == (600, 300)
    rules = program.booking
    assert [t.kind for t in rules.slots] == ["morning", "afternoon", "evening"]
    assert (rules.change_until_days_before, rules.move_within_months, rules.refund_on_cancel) == (3, 3, False)


def read_sample() -> dict:
    return tomllib.loads((PROGRAMS_DIR / "it-passport.toml").read_text())


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.pop("duration_minutes"), "missing 'duration_minutes'"),
        (lambda d: d.update(duration_minutes="two hours"), "'duration_minutes' must be int"),
        (lambda d: d["scale"].update(slope=-1.0), "slope > 0"),
        (lambda d: d["fields"][1]["majors"][0]["middles"].append([1, "again"]), "used twice"),
        (lambda d: d["admission"].update(late_arrival="maybe"), "late_arrival"),
        (lambda d: d["booking"].pop("max_changes"), "missing 'max_changes'"),
        (lambda d: d["booking"]["slots"].append({"kind": "night", "starts": "25:00"}), "not HH:MM"),
        (lambda d: d["booking"]["slots"].append({"kind": "morning", "starts": "08:00"}), "distinct kinds"),
    ],
)
def test_a_broken_program_names_what_is_wrong(change, message):
    data = read_sample()
    change(data)
    with pytest.raises(ProgramError, match=message):
        parse_program(data, "broken.toml")


def test_a_missing_program_file_is_a_clear_error(tmp_path):
    with pytest.raises(ProgramError, match="not found"):
        load_program(str(tmp_path / "nothing.toml"))


def test_the_no_show_grace_period_is_the_program_s_with_a_default():
    assert load_program().admission.no_show_grace_minutes == 30
    data = read_sample()
    data["admission"].pop("no_show_grace_minutes")
    assert parse_program(data).admission.no_show_grace_minutes == 30
    data["admission"]["no_show_grace_minutes"] = 10
    assert parse_program(data).admission.no_show_grace_minutes == 10
    for wrong in (-1, "soon", 2.5):
        data["admission"]["no_show_grace_minutes"] = wrong
        with pytest.raises(ProgramError, match="no_show_grace_minutes"):
            parse_program(data)
