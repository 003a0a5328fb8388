"""Psychometric commands over the engine: calibrate, score, link (thin layers).

Each command reads CSV files with engine.io (whose errors name the row and
column at fault), calls one engine function and writes CSV.
"""
from __future__ import annotations

import sys
import time

import click
import numpy as np

import engine
from delivery.cli.progress import em_progress
from engine import io
from engine.calibration import SE_METHODS
from engine.fit import degrees_of_freedom, m2, sx2
from engine.linking import METHODS, link


def _read(reader, path):
    try:
        return reader(path)
    except io.CSVFormatError as error:
        raise click.ClickException(str(error)) from None


def _prior(text: str | None, name: str):
    if text is None or text.lower() == "none":
        return None
    try:
        first, second = (float(part) for part in text.split(","))
    except ValueError:
        raise click.BadParameter(f"expected two numbers like 6,16, got {text!r}", param_hint=name) from None
    return first, second


# Over replications of the benchmark's 3PL design it recovers a, b and c better than
# BILOG-MG's Beta(6, 16), whose mean .27 sits above typical c (docs/engine.md).
DEFAULT_C_PRIOR = "5,17"


@click.command("calibrate")
@click.argument("responses_csv", type=click.Path(exists=True, dir_okay=False))
@click.option("--model", type=click.Choice(list(engine.calibration.MODELS)), default="2pl", show_default=True)
@click.option("--out", "out_csv", type=click.Path(dir_okay=False), required=True, help="PARAMS.csv to write.")
@click.option("--fixed", "fixed_csv", type=click.Path(exists=True, dir_okay=False),
              help="PARAMS.csv of anchor items held at their parameters.")
@click.option("--c-prior", default=None, metavar="ALPHA,BETA",
              help="Beta prior on c (3PL/4PL). Default 5,17 (mean .23, mode .20; see docs/engine.md); "
                   "6,16 is BILOG-MG's; 'none' for ML.")
@click.option("--a-prior", default=None, metavar="MEANLOG,SDLOG", help="Lognormal prior on a.")
@click.option("--b-prior", default=None, metavar="MEAN,SD", help="Normal prior on b.")
@click.option("--tol", default=1e-4, show_default=True, help="Largest parameter change at convergence.")
@click.option("--max-iterations", default=2000, show_default=True, help="Largest number of E-steps.")
@click.option("--quadrature", "n_points", default=61, show_default=True, help="Quadrature nodes on [-6, 6].")
@click.option("--se", "se_method", type=click.Choice(list(SE_METHODS)), default="observed", show_default=True,
              help="Standard errors from the observed information (mirt's default) or the cross-product.")
@click.option("--quiet", is_flag=True, help="No progress lines.")
def calibrate_command(responses_csv, model, out_csv, fixed_csv, c_prior, a_prior, b_prior, tol,
                      max_iterations, n_points, se_method, quiet):
    """Calibrate items by marginal maximum likelihood (EM) and write PARAMS.csv."""
    started = time.perf_counter()
    table = _read(io.read_responses, responses_csv)
    responses = table.responses
    if (responses == engine.MISSING).mean() > 0.5:
        responses = engine.SparseResponses.from_dense(responses)
    fixed = None
    if fixed_csv:
        anchors = _read(io.read_parameters, fixed_csv)
        column_of = {name: index for index, name in enumerate(table.item_ids)}
        usable = ~np.isnan(anchors.items.a)  # an anchor without an estimate cannot anchor
        pairs = [(column_of[name], index) for index, name in enumerate(anchors.item_ids)
                 if name in column_of and usable[index]]
        if not pairs:
            raise click.ClickException(f"{fixed_csv}: none of its items appears in {responses_csv}")
        columns, rows = (np.array(side) for side in zip(*pairs))
        fixed = engine.FixedItems(columns, anchors.items.subset(rows))
    if c_prior is None and model in ("3pl", "4pl"):
        c_prior = DEFAULT_C_PRIOR
    priors = engine.Priors(_prior(a_prior, "--a-prior"), _prior(b_prior, "--b-prior"), _prior(c_prior, "--c-prior"))
    if priors == engine.Priors():
        priors = None
    try:
        result = engine.calibrate(responses, model, fixed=fixed, priors=priors, tol=tol,
                                  max_iterations=max_iterations, n_points=n_points, se_method=se_method,
                                  callback=None if quiet else em_progress)
    except ValueError as error:
        raise click.ClickException(f"{responses_csv}: {error}") from None
    fixed_flags = result.fixed.astype(int)
    bound_names = np.array(["a", "d", "c", "upper"])
    at_bound = np.array([" ".join(bound_names[row]) for row in result.at_bound], dtype=object)
    io.write_parameters(out_csv, table.item_ids, result.items, result.se,
                        {"converged": result.item_converged.astype(int), "fixed": fixed_flags, "at_bound": at_bound})

    lines = [
        f"model {model}, {result.n_examinees} examinees, {len(table.item_ids)} items"
        + (f" ({int(fixed_flags.sum())} fixed)" if fixed is not None else ""),
        f"log-likelihood {result.log_likelihood:.3f}   AIC {result.aic:.1f}   BIC {result.bic:.1f}"
        f"   parameters {result.n_parameters}",
        f"EM: {result.iterations} E-steps, " + ("converged" if result.converged else "NOT converged")
        + f" (tol {tol:g})",
    ]
    if priors is not None:
        lines.append(f"priors: {priors}")
    if fixed is not None:
        lines.append(f"latent distribution on the anchors' scale: mean {result.latent_mean:.3f} "
                     f"(SE {result.latent_se[0]:.3f}), sd {result.latent_sd:.3f} (SE {result.latent_se[1]:.3f})")
    if result.examinees_without_responses:
        lines.append(f"examinees with no responses: {result.examinees_without_responses} (they add nothing; "
                     "left out of the counts and of the fit)")
    lines.append(f"standard errors: {result.se_method} information; its condition number "
                 f"{result.information_condition:.3g} (scaled to a unit diagonal)")
    lines.extend(f"WARNING: {warning}" for warning in result.warnings)
    bounds = result.bound_report()
    lines.append(f"parameters at a bound: {len(bounds)}")
    lines.extend(f"  {table.item_ids[j]}: {text}" for j, text in bounds)
    bad = [f"  {table.item_ids[j]}: {result.item_messages[j]}" for j in np.flatnonzero(~result.item_converged)]
    lines.append(f"items not converged or not estimable: {len(bad)}")
    lines.extend(bad)
    lines.extend(_fit_summary(table, responses, result))
    lines.append(f"wrote {out_csv} in {time.perf_counter() - started:.2f} s")
    click.echo("\n".join(lines), err=True)
    if not result.converged:
        sys.exit(2)


# M2's weight matrix grows as items^4: the summary prints it for tests up to this size.
M2_ITEMS = 30


def _fit_summary(table, responses, result) -> list[str]:
    """S-X2 lines of the calibration summary: complete rows only, estimable items only."""
    if not isinstance(responses, np.ndarray):
        return ["S-X2: not computed (incomplete design; summed scores need every item)"]
    usable = ~result.not_estimable
    answered = (responses[:, usable] >= 0).any(axis=1)
    complete = (responses[:, usable] >= 0).all(axis=1)
    if not (complete | ~answered).all():
        return ["S-X2: not computed (incomplete design; summed scores need every item)"]
    if usable.sum() < 3:
        return ["S-X2: not computed (fewer than 3 estimable items)"]
    n_estimated, n_latent = degrees_of_freedom(result)
    columns = np.flatnonzero(usable)
    fit = sx2(responses[answered][:, columns], result.items.subset(columns), n_estimated=n_estimated[columns],
              n_latent=n_latent, latent_mean=result.latent_mean, latent_sd=result.latent_sd)
    misfit = fit.misfit(0.01)
    names = [table.item_ids[j] for j in columns[misfit]]
    lines = [f"S-X2 misfit (p < .01): {int(misfit.sum())} of {len(misfit)} items"
             + (": " + ", ".join(names[:20]) if names else "")]
    left_out = [f"{int((~answered).sum())} examinee(s) with no responses"] if not answered.all() else []
    left_out += [f"{int((~usable).sum())} item(s) not estimable"] if not usable.all() else []
    if left_out:
        lines[-1] += " (left out: " + ", ".join(left_out) + ")"
    if columns.size <= M2_ITEMS:
        try:
            limited = m2(responses[answered], result)
            lines.append(f"M2 {limited.statistic:.3f}, df {limited.df}, p {limited.p_value:.4f}, RMSEA "
                         f"{limited.rmsea:.3f} [{limited.rmsea_interval[0]:.3f}, {limited.rmsea_interval[1]:.3f}], "
                         f"SRMSR {limited.srmsr:.3f}")
        except (np.linalg.LinAlgError, ValueError) as error:
            lines.append(f"M2: not computed ({error})")
    return lines


BOUND = 6.0  # the default search interval of engine.ml_estimate / wle_estimate

SCORERS = {
    "eap": engine.eap,
    "map": engine.map_estimate,
    "ml": engine.ml_estimate,
    "wle": engine.wle_estimate,
}


@click.command("score")
@click.argument("responses_csv", type=click.Path(exists=True, dir_okay=False))
@click.option("--params", "params_csv", type=click.Path(exists=True, dir_okay=False), required=True)
@click.option("--method", type=click.Choice(list(SCORERS)), default="eap", show_default=True)
@click.option("--out", "out_csv", type=click.Path(dir_okay=False), required=True, help="SCORES.csv to write.")
@click.option("--quadrature", "n_points", default=61, show_default=True,
              help="EAP: quadrature nodes on [-6, 6] (mirt's fscores uses 121; scores agree to ~1e-5).")
def score_command(responses_csv, params_csv, method, out_csv, n_points):
    """Estimate theta and its standard error for every examinee and write SCORES.csv."""
    table = _read(io.read_responses, responses_csv)
    params = _read(io.read_parameters, params_csv)
    row_of = {name: index for index, name in enumerate(params.item_ids)}
    missing = [name for name in table.item_ids if name not in row_of]
    if missing:
        raise click.ClickException(f"{params_csv}: no parameters for item(s) of {responses_csv}: "
                                   + ", ".join(missing[:10]))
    rows = np.array([row_of[name] for name in table.item_ids])
    items = params.items.subset(rows)
    responses = table.responses
    notes = []
    unestimated = np.isnan(items.a) | np.isnan(items.b) | np.isnan(items.c) | np.isnan(items.upper_array)
    if unestimated.any():
        names = [table.item_ids[j] for j in np.flatnonzero(unestimated)]
        notes.append(f"WARNING: {len(names)} item(s) have no estimate in {params_csv} and are left out of "
                     "scoring: " + ", ".join(names[:10]))
        responses = responses.copy()
        responses[:, unestimated] = engine.MISSING
        items = engine.ItemParameters(np.where(unestimated, 1.0, items.a), np.where(unestimated, 0.0, items.b),
                                      np.where(unestimated, 0.0, items.c),
                                      None if items.d is None else np.where(unestimated, 1.0, items.d))
    if params.converged is not None:
        flagged = ~params.converged[rows] & ~unestimated
        if flagged.any():
            names = [table.item_ids[j] for j in np.flatnonzero(flagged)]
            notes.append(f"WARNING: {len(names)} item(s) are flagged as not converged in {params_csv} and are "
                         "used as they are: " + ", ".join(names[:10]))
    options = {"n_points": n_points} if method == "eap" else {}
    estimate = SCORERS[method](responses, items, **options)
    theta, se = estimate.theta.copy(), estimate.se.copy()
    if method in ("ml", "wle"):
        # At the search bound there is no finite maximum (all correct / all wrong, or too
        # few informative items): the estimate is not identified, so none is written.
        stuck = np.isfinite(theta) & (np.abs(theta) >= BOUND - 1e-6)
        if stuck.any():
            theta[stuck], se[stuck] = np.nan, np.nan
            notes.append(f"WARNING: {int(stuck.sum())} examinee(s) have no finite {method.upper()} estimate "
                         f"(it runs to the bound +-{BOUND:g}, e.g. all correct or all wrong): their theta and se "
                         "are left empty; EAP or MAP give every pattern an estimate")
    empty = np.isnan(estimate.theta)
    if empty.any() and method in ("ml", "wle"):
        notes.append(f"{int(empty.sum())} examinee(s) answered no item: theta and se left empty")
    io.write_scores(out_csv, table.examinee_ids, theta, se)
    for note in notes:
        click.echo(note, err=True)
    reliability = engine.marginal_reliability(items.subset(np.flatnonzero(~unestimated)))
    click.echo(f"scored {len(table.examinee_ids)} examinees by {method.upper()}; marginal reliability of the "
               f"test {reliability:.3f}; wrote {out_csv}", err=True)


@click.command("link")
@click.argument("from_csv", type=click.Path(exists=True, dir_okay=False))
@click.argument("to_csv", type=click.Path(exists=True, dir_okay=False))
@click.option("--method", type=click.Choice(list(METHODS)), default="stocking_lord", show_default=True)
@click.option("--out", "out_csv", type=click.Path(dir_okay=False),
              help="Write FROM's items transformed onto TO's scale.")
def link_command(from_csv, to_csv, method, out_csv):
    """Link the calibration FROM_CSV onto the scale of TO_CSV through their common items.

    Prints theta_TO = A theta_FROM + B by every method; --method picks the one used for --out.
    """
    source = _read(io.read_parameters, from_csv)
    target = _read(io.read_parameters, to_csv)
    row_of = {name: index for index, name in enumerate(target.item_ids)}
    common = [(index, row_of[name]) for index, name in enumerate(source.item_ids) if name in row_of]
    if len(common) < 2:
        raise click.ClickException(f"{from_csv} and {to_csv} share {len(common)} item(s); linking needs at least 2")
    mine, theirs = (np.array(side) for side in zip(*common))
    click.echo(f"{len(common)} common items", err=True)
    click.echo(f"{'method':<14} {'A':>10} {'B':>10}")
    chosen = None
    for name in METHODS:
        constants = link(source.items.subset(mine), target.items.subset(theirs), name)
        click.echo(f"{name:<14} {constants.A:10.5f} {constants.B:10.5f}" + ("  <- used" if name == method else ""))
        if name == method:
            chosen = constants
    if out_csv:
        se = None
        if source.se is not None:
            se = engine.ItemParameters(source.se.a / chosen.A, chosen.A * source.se.b, source.se.c)
        io.write_parameters(out_csv, source.item_ids, chosen.transform_items(source.items), se)
        click.echo(f"wrote {out_csv}", err=True)


COMMANDS: list = [calibrate_command, score_command, link_command]
