"""Scores from the command line: reproducibility checks, rescoring campaigns, statistics."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from delivery.cli.bank import _actor, _now, _open, _program, as_option
from itembank.program import ExamProgram
from persistence.errors import InvalidInput


@click.group("rescoring")
def rescoring_group() -> None:
    """Rescoring: check that stored scores reproduce; correct keys or withdraw items in campaigns."""


@rescoring_group.command("check")
def check() -> None:
    """Rescore every result in batch from the stored answers; exit 1 if any score differs."""
    from delivery.rescoring import check_reproduction

    with _open() as session:
        report = check_reproduction(session)
    click.echo(f"{report.identical_scores} of {report.results} results reproduced exactly "
               f"(largest theta difference {report.largest_theta_difference:.2e})")
    if not report.all_identical:
        click.echo(f"differing results: {', '.join(map(str, report.mismatched_result_ids[:20]))}", err=True)
        raise SystemExit(1)


def _print_campaign(campaign, labels: tuple[str, ...]) -> None:
    click.echo(f"campaign {campaign.id}: {campaign.status}; {campaign.reason}")
    click.echo(f"  proposed by {campaign.proposed_by} at {campaign.proposed_at:%Y-%m-%d %H:%M} UTC"
               + (f"; {campaign.status} by {campaign.decided_by}" if campaign.decided_by else ""))
    for amendment in campaign.amendments:
        what = f"key -> {labels[amendment.key]}" if amendment.kind == "key" else "withdrawn"
        click.echo(f"  item version {amendment.item_version_id}: {what}")
    flips = sum(1 for c in campaign.changes if c.before["passed"] != c.after["passed"])
    click.echo(f"  {len(campaign.changes)} result(s) change, {flips} pass/fail decision(s) change")
    for change in campaign.changes[:50]:
        b, a = change.before, change.after
        click.echo(f"    result {change.score_result_id}: total {b['total']} -> {a['total']}, "
                   f"{'pass' if b['passed'] else 'fail'} -> {'pass' if a['passed'] else 'fail'}")


@rescoring_group.command("propose")
@click.option("--item", "code", required=True, help="Item code, e.g. T23-004.")
@click.option("--version", "version", required=True, type=int, help="The item version whose scoring changes.")
@click.option("--key", help="The corrected key, as the program labels the options in any of its languages (e.g. ア or A).")
@click.option("--withdraw", is_flag=True, help="Withdraw the version from scoring instead.")
@click.option("--reason", required=True)
@as_option
def propose(code: str, version: int, key: str | None, withdraw: bool, reason: str, username: str | None) -> None:
    """Propose a campaign and print its before/after table."""
    from delivery.rescoring import propose_campaign
    from scoring.campaigns import Amendment

    if withdraw == (key is not None):
        raise click.UsageError("give either --key or --withdraw")
    program = _program()
    who = _actor(username)
    if withdraw:
        amendment = Amendment(code, version, "withdrawn")
    else:
        amendment = Amendment(code, version, "key", option_index(program, key))
    with _open() as session:
        campaign = propose_campaign(session, [amendment], reason=reason, now=_now(), **who)
        _print_campaign(campaign, program.option_labels)


def option_index(program: ExamProgram, label: str) -> int:
    """The position of the option labelled ``label`` in any of the program's languages (ア or A),
    or InvalidInput."""
    index = program.option_index(label)
    if index is None:
        raise InvalidInput("the key {label!r} is not an option label; one of {labels}", field="key", label=label,
                           labels=", ".join(program.option_labels))
    return index


@rescoring_group.command("show")
@click.argument("campaign_id", type=int)
def show(campaign_id: int) -> None:
    """A campaign and its before/after table."""
    from scoring.campaigns import campaign_by_id

    with _open() as session:
        _print_campaign(campaign_by_id(session, campaign_id), _program().option_labels)


@rescoring_group.command("apply")
@click.argument("campaign_id", type=int)
@as_option
def apply(campaign_id: int, username: str | None) -> None:
    """Apply a proposed campaign (by another psychometrician than its proposer)."""
    from delivery.rescoring import apply_campaign

    who = _actor(username)
    with _open() as session:
        changed = apply_campaign(session, _program(), campaign_id, now=_now(), **who)
    click.echo(f"campaign {campaign_id} applied: {changed} result(s) changed")


@rescoring_group.command("discard")
@click.argument("campaign_id", type=int)
@click.option("--reason", required=True)
@as_option
def discard(campaign_id: int, reason: str, username: str | None) -> None:
    """Discard a proposed campaign."""
    from delivery.rescoring import discard_campaign

    who = _actor(username)
    with _open() as session:
        discard_campaign(session, campaign_id, now=_now(), reason=reason, **who)
    click.echo(f"campaign {campaign_id} discarded")


@click.command("statistics")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="First slot date (inclusive).")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="Last slot date (inclusive).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the breakdowns here.")
def statistics(since: dt.datetime | None, until: dt.datetime | None, csv_path: Path | None) -> None:
    """The operation's numbers: examinees, pass rates and scores by month, centre, region and group."""
    from delivery.statistics import operation_report

    program = _program()
    with _open() as session:
        report = operation_report(session, program, since=since.date() if since else None,
                                  until=until.date() if until else None)
    s = report.summary
    click.echo(f"applicants {s.applicants}, examinees {s.examinees}, passed {s.passed} ({s.pass_rate:.1%}); "
               f"average age of those who passed {s.average_age_of_passers:.1f}")
    click.echo(f"working {s.working_share:.1%} / students {1 - s.working_share:.1%}; IT companies "
               f"{s.it_share_of_working:.1%} of the working; pass rate working {s.pass_rate_working:.1%}, "
               f"students {s.pass_rate_students:.1%}")
    if csv_path is not None:
        csv_path.write_text(report.csv)
        click.echo(f"breakdowns written to {csv_path}")


@click.command("simulate-year")
@click.option("--candidates", default=2000, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--start", "first_day", type=click.DateTime(["%Y-%m-%d"]), help="First day of the year (default: today).")
@click.option("--seed", default=2019, show_default=True, type=int)
def simulate_year(candidates: int, first_day: dt.datetime | None, seed: int) -> None:
    """Run a simulated year of candidates through booking, delivery and scoring, then check the scores.

    The group mix and the pass rates by group follow the exam spec's fiscal 2019 table;
    at the end every result is rescored in batch and compared with the score the
    candidate saw. Use a database of its own (CBT_DATABASE_URL): it adds thousands of rows.
    """
    import numpy as np

    from delivery.year import simulate_year as run

    program = _program()
    start = first_day.date() if first_day else _now().date()
    with _open() as session:
        with click.progressbar(length=candidates, label="sittings", file=None) as bar:
            last = [0]

            def progress(done: int, total: int) -> None:
                bar.length = total
                bar.update(done - last[0])
                last[0] = done

            report = run(session.get_bind(), session, program, candidates=candidates, first_day=start,
                         rng=np.random.default_rng(seed), progress=progress)
    click.echo(f"{report.applicants} bookings, {report.sittings} sittings in {report.seconds:.0f} s "
               f"({1000 * report.seconds / max(report.sittings, 1):.0f} ms per candidate)")
    r = report.reproduction
    click.echo(f"batch rescore: {r.identical_scores} of {r.results} results identical "
               f"(largest theta difference {r.largest_theta_difference:.1e})")
    click.echo("see `cbt statistics` or the psychometrician's Operation statistics page for the year's figures")
    if not r.all_identical:
        raise SystemExit(1)


COMMANDS = [rescoring_group, statistics, simulate_year]
