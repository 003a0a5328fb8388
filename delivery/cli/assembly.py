"""Form assembly from the command line: ``cbt forms ...`` and ``cbt simulate``.

The twins of the psychometrician's forms and design-study screens; actions are
audited like the web's, as the staff member named by ``--as`` (or ``$CBT_ACTOR``).
"""
from __future__ import annotations

import json
from pathlib import Path

import click

from delivery.cli.bank import _actor, _now, _open, _program, as_option
from itembank.assembly_models import FORM_STATUSES


@click.group("forms")
def forms_group() -> None:
    """Pre-assembled parallel forms: assemble, review, publish, retire."""


@forms_group.command("assemble")
@click.option("--count", default=5, show_default=True, help="How many draft forms to assemble.")
@click.option("--seed", type=int, default=None, help="Seed of the candidate sampling (for a reproducible batch).")
@click.option("--note", default="", help="Why this batch was assembled.")
@as_option
def assemble_command(count, seed, note, username):
    """Assemble COUNT draft forms by MILP, parallel to each other and to the published forms."""
    from itembank import forms

    who = _actor(username)
    with _open() as session:
        made = forms.assemble_batch(session, _program(), count, seed=seed, note=note, now=_now(), **who)
        for form in made:
            worst = max(abs(v / t["information"] - 1) for v, t in zip(form.information, form.targets))
            click.echo(f"{form.code}  draft  {len(form.items)} items  largest deviation from target {worst:.2%}")


@forms_group.command("list")
@click.option("--status", type=click.Choice(FORM_STATUSES), default=None)
def list_command(status):
    """The forms, newest first."""
    from itembank import forms

    with _open() as session:
        rows = forms.forms(session, _program(), status)
        if not rows:
            click.echo("no forms")
        for form in rows:
            click.echo(f"{form.code:<14} {form.status:<10} {len(form.items):>3} items  batch {form.batch}  "
                       f"by {form.created_by}")


@forms_group.command("show")
@click.argument("code")
def show_command(code):
    """A form's review: counts against the blueprint, information against the targets, overlap, problems."""
    from itembank import forms

    with _open() as session:
        form = forms.form_by_code(session, code)
        review = forms.review(session, _program(), form)
        click.echo(f"{form.code}  {form.status}  assembled {form.created_at:%Y-%m-%d %H:%M} by {form.created_by}")
        for line in review.fields:
            click.echo(f"  field {line.name:<12} {line.count:>3} (blueprint {line.minimum})"
                       f"{'' if line.met else '  NOT MET'}")
        for line in review.categories:
            click.echo(f"  category {line.name:<44} {line.count:>2} ({line.minimum}-{line.maximum})"
                       f"{'' if line.met else '  NOT MET'}")
        for line in review.information:
            click.echo(f"  information at {line.name:<16} {line.information:8.3f}  target {line.target:8.3f}  "
                       f"{line.deviation:+.2%}")
        for other, shared in review.overlaps:
            click.echo(f"  shares {shared} items with {other} (at most {review.max_overlap})")
        for problem in review.problems:
            click.echo(f"  PROBLEM: {problem}")
        if not review.problems:
            click.echo("  no problems: it can be published")


@forms_group.command("publish")
@click.argument("code")
@click.option("--reason", default="", help="Why (e.g. the review it passed).")
@as_option
def publish_command(code, reason, username):
    """Publish a reviewed draft: sittings draw it when the program's method is "forms"."""
    from itembank import forms

    who = _actor(username)
    with _open() as session:
        forms.publish(session, _program(), code, reason=reason, now=_now(), **who)
        click.echo(f"{code} published")


@forms_group.command("retire")
@click.argument("code")
@click.option("--reason", required=True, help="Why the form is retired.")
@as_option
def retire_command(code, reason, username):
    """Stop drawing a published form (or set a draft aside)."""
    from itembank import forms

    who = _actor(username)
    with _open() as session:
        forms.retire(session, code, reason=reason, now=_now(), **who)
        click.echo(f"{code} retired")


@click.command("simulate")
@click.option("--candidates", default=1000, show_default=True, help="Simulated candidates (each sits twice).")
@click.option("--design", "designs", multiple=True, type=click.Choice(["loft", "forms"]),
              help="Designs to compare (default: both).")
@click.option("--pool", "pool_source", default="bank", show_default=True,
              help="'bank' (the operational items) or 'synthetic:N' (N generated items).")
@click.option("--forms", "n_forms", default=10, show_default=True, help="Pre-assembled forms in the forms design.")
@click.option("--seed", default=1, show_default=True)
@click.option("--plots", "plots_dir", type=click.Path(file_okay=False), default=None,
              help="Write the plots (SVG) and the report (JSON) into this folder.")
@as_option
def simulate_command(candidates, designs, pool_source, n_forms, seed, plots_dir, username):
    """A design study: CSEM, classification accuracy and consistency, exposure, overlap, information spread."""
    from delivery.design_studies import run_study

    who = _actor(username)
    program = _program()
    with _open() as session:
        study = run_study(session, program, candidates=candidates, designs=tuple(designs) or ("loft", "forms"),
                          pool_source=pool_source, n_forms=n_forms, seed=seed, now=_now(), **who)
        click.echo(f"Design study {study.id}: {candidates} candidates (each sitting twice), {study.pool}")
        for line in study_lines(study.results, program.assembly.tolerance):
            click.echo(line)
        if plots_dir:
            write_plots(study.results, Path(plots_dir), program)
            click.echo(f"plots and report written to {plots_dir}")


def study_lines(results: dict, tolerance: float) -> list[str]:
    lines = []
    for design, r in results.items():
        c, e, o = r["classification"], r["exposure"], r["overlap"]
        lines.append(f"[{design}] {r['sittings']} sittings, {r['distinct_forms']} distinct forms, "
                     f"{r['seconds']['assembly_per_sitting_ms']:.2f} ms assembly per sitting")
        for name, cut in r["cuts"].items():
            lines.append(f"  CSEM at {name:<16} mean {cut['csem_mean']:6.1f}  worst {cut['csem_max']:6.1f} scale points")
        lines.append(f"  classification accuracy {c['accuracy']:.3f}  consistency {c['consistency']:.3f}  "
                     f"false pass {c['false_pass']:.3f}  false fail {c['false_fail']:.3f}")
        lines.append(f"  exposure max {e['max']:.3f} (target {e['target']:.2f}, {e['above_target']} items above)  "
                     f"p50 {e['p50']:.3f}  p90 {e['p90']:.3f}  p99 {e['p99']:.3f}  unused {e['unused']}")
        lines.append(f"  overlap between sittings mean {o['mean']:.3f}  p95 {o['p95']:.3f}  max {o['max']:.3f}")
        for name, i in r["information"].items():
            lines.append(f"  information at {name:<16} target {i['target']:7.3f}  min {i['min']:7.3f}  "
                         f"max {i['max']:7.3f}  worst deviation {i['worst_deviation']:.2%}  "
                         f"within ±{tolerance:.0%}: {i['within_tolerance']:.1%}")
    return lines


def write_plots(results: dict, folder: Path, program) -> None:
    from itembank import design_plots

    folder.mkdir(parents=True, exist_ok=True)
    total_cut = float(program.pass_rule.total_minimum)
    (folder / "csem-total.svg").write_text(design_plots.csem_svg(results, "total", total_cut))
    for field in program.fields:
        (folder / f"csem-{field.code}.svg").write_text(
            design_plots.csem_svg(results, field.code, float(program.pass_rule.field_minimum)))
    (folder / "exposure.svg").write_text(design_plots.exposure_svg(results))
    (folder / "information.svg").write_text(design_plots.information_svg(results))
    (folder / "report.json").write_text(json.dumps(results, indent=1))


COMMANDS = [forms_group, simulate_command]
