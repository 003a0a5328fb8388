"""The operation's statistics: group-bys checked against counts made by hand."""
from __future__ import annotations

import re

import numpy as np
from click.testing import CliRunner

from delivery.cli import main as cbt
from scoring.statistics import ScoredSittings, breakdown, breakdowns_csv, candidate_group, score_distribution, summary
from tests.helpers import api, booked_candidate, login_candidate, login_staff, start_sitting

FIELDS = ("strategy", "management", "technology")


def made_up() -> ScoredSittings:
    return ScoredSittings(
        field_codes=FIELDS,
        month=np.array(["2026-04", "2026-04", "2026-05", "2026-05", "2026-05"]),
        centre=np.array(["A", "B", "A", "A", "B"]),
        region=np.array(["Kanto", "Kinki", "Kanto", "Kanto", "Kinki"]),
        group=np.array(["working/it", "student", "working/non-it", "student", "working/it"]),
        age=np.array([30.0, 20.0, 40.0, 21.0, 35.0]),
        total=np.array([650, 580, 700, 610, 1000]),
        fields=np.array([[600, 700, 640], [500, 250, 600], [710, 690, 700], [620, 600, 290], [1000, 1000, 1000]]),
        passed=np.array([True, False, True, False, True]),
    )


def test_breakdowns_count_what_a_person_counts():
    data = made_up()
    months = breakdown(data, "month", field_minimum=300)
    assert months.keys == ("2026-04", "2026-05")
    assert months.sittings.tolist() == [2, 3] and months.passed.tolist() == [1, 2]
    np.testing.assert_allclose(months.pass_rate, [0.5, 2 / 3])
    np.testing.assert_allclose(months.mean_total, [615, (700 + 610 + 1000) / 3])
    np.testing.assert_allclose(months.below_field_minimum[0], [0, 0.5, 0])  # one management score under 300
    groups = breakdown(data, "group", field_minimum=300)
    assert dict(zip(groups.keys, groups.sittings.tolist())) == {"student": 2, "working/it": 2, "working/non-it": 1}
    csv = breakdowns_csv([months, groups], FIELDS)
    assert csv.splitlines()[1].startswith('"month","2026-04","2","1","0.5000","615.0"')


def test_the_summary_reads_like_the_exam_spec_table():
    s = summary(made_up(), applicants=7)
    assert (s.applicants, s.examinees, s.passed) == (7, 5, 3)
    assert s.pass_rate == 0.6
    assert s.average_age_of_passers == (30 + 40 + 35) / 3
    assert s.working_share == 0.6 and s.it_share_of_working == 2 / 3
    assert s.pass_rate_working == 1.0 and s.pass_rate_students == 0.0


def test_score_distribution_puts_the_maximum_in_the_last_bin():
    edges, counts = score_distribution(np.array([0, 49, 50, 999, 1000]))
    assert len(edges) == 21 and counts[0] == 2 and counts[1] == 1 and counts[-1] == 2 and counts.sum() == 5


def test_candidate_groups():
    assert candidate_group("working", "it") == "working/it"
    assert candidate_group("student", None) == "student"
    assert candidate_group(None, None) == "unknown"


def test_the_dashboard_and_csv_show_the_sittings(app, session, program, clock):
    booked = booked_candidate(session, program, clock.now)
    client = app.test_client()
    login_candidate(client, booked)
    start_sitting(client)
    api(client, "POST", "/api/sitting/finish", {})
    psychometrician = app.test_client()
    login_staff(psychometrician, "psychometrician", "psychometrician-demo-pass")
    page = psychometrician.get("/bank/operations/").get_data(as_text=True)
    assert "Operation statistics" in page and "By candidate group" in page
    # The charts are SVG documents of their own behind <img>: the page carries no inline style the CSP would block.
    assert "<svg" not in page and "style=" not in page
    sources = re.findall(r'<img src="(/bank/operations/[a-z]+\.svg[^"]*)"', page)
    assert len(sources) == 3
    for source in sources:
        chart = psychometrician.get(source.replace("&amp;", "&"))
        assert chart.status_code == 200 and chart.mimetype == "image/svg+xml"
        assert chart.get_data(as_text=True).lstrip().startswith("<?xml") and "<svg" in chart.get_data(as_text=True)
    assert "Sittings and pass rate by month" in psychometrician.get("/bank/operations/months.svg").get_data(as_text=True)
    psychometrician.set_cookie("cbt_language", "ja")
    assert "月別の受験者数と合格率" in psychometrician.get("/bank/operations/months.svg").get_data(as_text=True)
    psychometrician.set_cookie("cbt_language", "en")
    assert psychometrician.get("/bank/operations/pie.svg").status_code == 404
    assert psychometrician.get("/bank/operations/months.svg?since=2001-01-01&until=2001-01-02").status_code == 404
    csv = psychometrician.get("/bank/operations/statistics.csv")
    assert csv.mimetype == "text/csv" and csv.get_data(as_text=True).startswith('"dimension","key","sittings"')
    assert "No scored sittings" in psychometrician.get("/bank/operations/?since=2001-01-01&until=2001-01-02").get_data(as_text=True)
    assert psychometrician.get("/bank/operations/?since=yesterday").status_code == 400
    url = session.get_bind().url.render_as_string(hide_password=False)
    outcome = CliRunner().invoke(cbt, ["statistics"], env={"CBT_DATABASE_URL": url})
    assert outcome.exit_code == 0 and "examinees" in outcome.output
