"""The exam program: fields, syllabus, blueprint, timing, scale and pass rule.

A program is configuration read from a TOML file (``itembank/programs/*.toml``),
never constants in code. ``load_program()`` reads the one named by
``CBT_PROGRAM`` (a path or a bundled program code), by default ``it-passport``.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from functools import cache
from pathlib import Path

from persistence.errors import InvalidInput
from persistence.settings import load_settings

PROGRAMS_DIR = Path(__file__).with_name("programs")


class ProgramError(InvalidInput):
    """The program file is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class MiddleCategory:
    number: int
    name: str
    major: int
    field: str


@dataclass(frozen=True)
class Field:
    code: str
    name: str
    scored: int
    pretest: int
    categories: tuple[int, ...]

    @property
    def items(self) -> int:
        return self.scored + self.pretest


SCORING_METHODS = ("eap", "map", "ml", "wle")


@dataclass(frozen=True)
class ScoringSettings:
    model: str
    method: str
    prior_mean: float
    prior_sd: float
    quadrature_points: int
    quadrature_range: float


@dataclass(frozen=True)
class ScaleTransformation:
    """scale = clip(round(intercept + slope * theta), minimum, maximum)."""

    slope: float
    intercept: float
    minimum: int
    maximum: int

    def theta_for(self, scale_score: float) -> float:
        return (scale_score - self.intercept) / self.slope


@dataclass(frozen=True)
class PassRule:
    total_minimum: int
    field_minimum: int

    def passes(self, total: int, fields: dict[str, int]) -> bool:
        return total >= self.total_minimum and all(s >= self.field_minimum for s in fields.values())


@dataclass(frozen=True)
class AdmissionRules:
    late_arrival: str  # "deduct": time lost since the slot's start is deducted; "full": no deduction
    check_in_required: bool
    venue_opens_minutes_before: int
    # A booked candidate not checked in counts as a no-show only this long after the slot's start
    # (the end-of-day report); before that they may still arrive late.
    no_show_grace_minutes: int = 30
    # The most minutes proctors may add to one sitting in all (time lost to a PC failure, say).
    max_added_minutes: int = 60
    # A candidate logs in only at a PC a proctor of the booking's centre enrolled as one of its seats.
    seat_enrolment_required: bool = True


@dataclass(frozen=True)
class SlotTime:
    """A sitting time a centre may run each open day, e.g. ("morning", "09:30") local time."""

    kind: str
    starts: str  # HH:MM in the program's timezone


@dataclass(frozen=True)
class BookingRules:
    """Booking, moving and cancelling: policy of the program, read by :mod:`centers`."""

    slots: tuple[SlotTime, ...]
    bookable_days_ahead: int  # the calendar is open this many days ahead
    book_until_days_before: int  # a new booking closes this many days before the sitting
    change_until_days_before: int  # moves and cancellations close this many days before
    move_within_months: int  # a booking moves to a date at most this many months after the original
    max_changes: int  # moves allowed per booking
    refund_on_cancel: bool


@dataclass(frozen=True)
class LifecycleStep:
    """One allowed move of an item's status, and who may make it."""

    from_status: str
    to_status: str
    roles: tuple[str, ...]
    four_eyes: bool = False  # not by the author of the item's current content
    calibration: bool = False  # only by approval in a calibration run
    parameters: bool = False  # the item must have IRT parameters


@dataclass(frozen=True)
class CalibrationSettings:
    """How the pretest loop and the drift watch run (see the program file)."""

    model: str
    c_prior: tuple[float, float] | str | None  # (alpha, beta), "anchors", or None (no prior)
    c_prior_weight: float
    min_sittings: int
    min_responses: int
    min_point_biserial: float
    max_se_b: float
    fit_alpha: float
    drift_rmsd: float
    drift_b: float
    drift_window_days: int
    dif_min_group: int


ASSEMBLY_METHODS = ("loft", "forms")


@dataclass(frozen=True)
class AssemblySettings:
    """How forms are assembled (see the [assembly] section of the program file)."""

    method: str  # "loft": a form per sitting at login; "forms": a published pre-assembled form per sitting
    shuffle_options: bool
    targets: str | dict[str, float]  # "pool" (derived from the operational pool) or information per scope
    target_factor: float
    tolerance: float
    max_exposure: float
    exposure_margin: float
    exposure_refresh_seconds: float
    max_overlap: float
    randomesque: int
    category_bounds: dict[int, tuple[int, int]]  # middle category -> (minimum, maximum) scored items per form

    def overlap_items(self, scored: int) -> int:
        """The most scored items two pre-assembled forms may share."""
        return int(self.max_overlap * scored)


@dataclass(frozen=True)
class ExamProgram:
    code: str
    name: str
    timezone: str
    duration_minutes: int
    option_labels: tuple[str, ...]
    admission: AdmissionRules
    scoring: ScoringSettings
    scale: ScaleTransformation
    pass_rule: PassRule
    fields: tuple[Field, ...]
    categories: tuple[MiddleCategory, ...]
    majors: tuple[tuple[int, str, str], ...]  # (number, name, field code)
    booking: BookingRules
    lifecycle: tuple[LifecycleStep, ...] = ()
    calibration: CalibrationSettings | None = None
    assembly: AssemblySettings | None = None
    # The languages the exam is given in, its default first: a booking without a language of its
    # own, and an item without a version in the candidate's, are shown in the default.
    languages: tuple[str, ...] = ("ja",)
    # The option labels of each language other than the default's (``option_labels``); a language
    # without labels of its own uses the default's.
    other_labels: dict[str, tuple[str, ...]] = dataclass_field(default_factory=dict)

    @property
    def default_language(self) -> str:
        return self.languages[0]

    def labels_for(self, language: str | None) -> tuple[str, ...]:
        """The option labels a reader of ``language`` sees (the default language's for None or another)."""
        if not language or language == self.default_language:
            return self.option_labels
        return self.other_labels.get(language, self.option_labels)

    def option_index(self, label: str) -> int | None:
        """The position of the option ``label`` names in any of the program's languages (ア and A
        both name the first); None if it names none, or different options in two languages."""
        cleaned = label.strip()
        found = {labels.index(cleaned) for labels in (self.option_labels, *self.other_labels.values())
                 if cleaned in labels}
        return found.pop() if len(found) == 1 else None

    @property
    def items_per_sitting(self) -> int:
        return sum(f.items for f in self.fields)

    @property
    def field_codes(self) -> tuple[str, ...]:
        return tuple(f.code for f in self.fields)

    def field(self, code: str) -> Field:
        for f in self.fields:
            if f.code == code:
                return f
        raise KeyError(code)

    def category(self, number: int) -> MiddleCategory:
        for c in self.categories:
            if c.number == number:
                return c
        raise KeyError(number)

    def field_of_category(self, number: int) -> str:
        return self.category(number).field

    def major_of_category(self, number: int) -> tuple[int, str]:
        major = self.category(number).major
        return next((n, name) for n, name, _ in self.majors if n == major)

    def lifecycle_step(self, from_status: str, to_status: str) -> LifecycleStep | None:
        return next((s for s in self.lifecycle if (s.from_status, s.to_status) == (from_status, to_status)), None)

    def next_statuses(self, from_status: str) -> tuple[LifecycleStep, ...]:
        return tuple(s for s in self.lifecycle if s.from_status == from_status)


def _require(table: dict, key: str, kind: type, where: str):
    if key not in table:
        raise ProgramError("{where}: missing '{key}'", where=where, key=key)
    value = table[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ProgramError("{where}: '{key}' must be {name}, got {value!r}", where=where, key=key, name=kind.__name__,
                           value=value)
    return value


LANGUAGE_TAG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{1,8})*$")


def _languages(data: dict, source: str) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """The program's languages (default first) and the option labels of each.

    ``option_labels`` is a list (the same labels in every language, as program files wrote it
    before there were languages) or a table of lists by language."""
    raw = data.get("languages", ["ja", "en"])
    if not isinstance(raw, list) or not raw or not all(isinstance(x, str) and LANGUAGE_TAG.match(x) for x in raw) \
            or len(set(raw)) != len(raw):
        raise ProgramError("{source}: languages must be distinct language tags, the default first",
                           source=source)
    languages = tuple(raw)
    given = data.get("option_labels")
    if given is None:
        raise ProgramError("{where}: missing '{key}'", where=source, key="option_labels")
    if isinstance(given, list):
        given = {languages[0]: given}
    if not isinstance(given, dict):
        raise ProgramError("{source}: option_labels must be a list of labels or a table of lists by language",
                           source=source)
    labels: dict[str, tuple[str, ...]] = {}
    for language, values in given.items():
        if language not in languages:
            raise ProgramError("{source}: option_labels names {language}, which is not one of the program's "
                               "languages ({languages})", source=source, language=language,
                               languages=", ".join(languages))
        if not isinstance(values, list) or len(values) < 2 or not all(isinstance(v, str) and v.strip()
                                                                     for v in values) or len(set(values)) != len(values):
            raise ProgramError("{source}: the option labels of {language} must be at least two distinct labels",
                               source=source, language=language)
        labels[language] = tuple(values)
    if languages[0] not in labels:
        raise ProgramError("{source}: option_labels needs the labels of the default language {language}",
                           source=source, language=languages[0])
    if len({len(v) for v in labels.values()}) != 1:
        raise ProgramError("{source}: every language needs as many option labels as the others", source=source)
    return languages, labels
def _optional(table: dict, key: str, kind: type, default, where: str):
    return _require(table, key, kind, where) if key in table else default


def parse_program(data: dict, source: str = "program") -> ExamProgram:
    """Build and check an :class:`ExamProgram` from the parsed TOML ``data``."""
    fields, categories, majors = [], [], []
    for i, f in enumerate(data.get("fields", [])):
        where = f"{source}: fields[{i}]"
        code = _require(f, "code", str, where)
        field_categories = []
        for m in f.get("majors", []):
            number = _require(m, "number", int, where)
            majors.append((number, _require(m, "name", str, where), code))
            for middle in m.get("middles", []):
                if not (isinstance(middle, list) and len(middle) == 2):
                    raise ProgramError("{where}: a middle category must be [number, name], got {middle!r}",
                                       where=where, middle=middle)
                categories.append(MiddleCategory(int(middle[0]), str(middle[1]), number, code))
                field_categories.append(int(middle[0]))
        fields.append(
            Field(
                code=code,
                name=_require(f, "name", str, where),
                scored=_require(f, "scored", int, where),
                pretest=_require(f, "pretest", int, where),
                categories=tuple(field_categories),
            )
        )
    if not fields:
        raise ProgramError("{source}: no [[fields]]", source=source)
    numbers = [c.number for c in categories]
    if len(set(numbers)) != len(numbers):
        raise ProgramError("{source}: a middle category number is used twice", source=source)
    if len({f.code for f in fields}) != len(fields):
        raise ProgramError("{source}: a field code is used twice", source=source)

    scoring = data.get("scoring", {})
    scale = data.get("scale", {})
    rule = data.get("pass_rule", {})
    admission = data.get("admission", {})
    booking = data.get("booking", {})
    where_booking = f"{source}: [booking]"
    languages, labels = _languages(data, source)
    program = ExamProgram(
        code=_require(data, "code", str, source),
        name=_require(data, "name", str, source),
        timezone=_require(data, "timezone", str, source),
        duration_minutes=_require(data, "duration_minutes", int, source),
        option_labels=labels[languages[0]],
        languages=languages,
        other_labels={language: labels[language] for language in languages[1:] if language in labels},
        admission=AdmissionRules(
            late_arrival=_require(admission, "late_arrival", str, f"{source}: [admission]"),
            check_in_required=_require(admission, "check_in_required", bool, f"{source}: [admission]"),
            venue_opens_minutes_before=_require(admission, "venue_opens_minutes_before", int, f"{source}: [admission]"),
            no_show_grace_minutes=admission.get("no_show_grace_minutes", 30),
            max_added_minutes=_optional(admission, "max_added_minutes", int, 60, f"{source}: [admission]"),
            seat_enrolment_required=_optional(admission, "seat_enrolment_required", bool, True,
                                              f"{source}: [admission]"),
        ),
        scoring=ScoringSettings(
            model=_require(scoring, "model", str, f"{source}: [scoring]"),
            method=_require(scoring, "method", str, f"{source}: [scoring]"),
            prior_mean=_require(scoring, "prior_mean", float, f"{source}: [scoring]"),
            prior_sd=_require(scoring, "prior_sd", float, f"{source}: [scoring]"),
            quadrature_points=_require(scoring, "quadrature_points", int, f"{source}: [scoring]"),
            quadrature_range=_require(scoring, "quadrature_range", float, f"{source}: [scoring]"),
        ),
        scale=ScaleTransformation(
            slope=_require(scale, "slope", float, f"{source}: [scale]"),
            intercept=_require(scale, "intercept", float, f"{source}: [scale]"),
            minimum=_require(scale, "minimum", int, f"{source}: [scale]"),
            maximum=_require(scale, "maximum", int, f"{source}: [scale]"),
        ),
        pass_rule=PassRule(
            total_minimum=_require(rule, "total_minimum", int, f"{source}: [pass_rule]"),
            field_minimum=_require(rule, "field_minimum", int, f"{source}: [pass_rule]"),
        ),
        fields=tuple(fields),
        categories=tuple(sorted(categories, key=lambda c: c.number)),
        majors=tuple(majors),
        booking=BookingRules(
            slots=tuple(
                SlotTime(_require(t, "kind", str, where_booking), _require(t, "starts", str, where_booking))
                for t in _require(booking, "slots", list, where_booking)
            ),
            bookable_days_ahead=_require(booking, "bookable_days_ahead", int, where_booking),
            book_until_days_before=_require(booking, "book_until_days_before", int, where_booking),
            change_until_days_before=_require(booking, "change_until_days_before", int, where_booking),
            move_within_months=_require(booking, "move_within_months", int, where_booking),
            max_changes=_require(booking, "max_changes", int, where_booking),
            refund_on_cancel=_require(booking, "refund_on_cancel", bool, where_booking),
        ),
        lifecycle=_lifecycle(data.get("lifecycle", {}), source),
        calibration=_calibration(data.get("calibration", {}), f"{source}: [calibration]"),
    )
    program = replace(program, assembly=_assembly(data.get("assembly", {}), program, f"{source}: [assembly]"))
    if program.admission.late_arrival not in ("deduct", "full"):
        raise ProgramError("{source}: [admission] late_arrival must be 'deduct' or 'full'", source=source)
    grace = program.admission.no_show_grace_minutes
    if type(grace) is not int or grace < 0:
        raise ProgramError("{source}: [admission] no_show_grace_minutes must be a whole number of minutes, 0 or more",
                           source=source)
    if not 0 <= program.admission.max_added_minutes <= 24 * 60:
        raise ProgramError("{source}: [admission] max_added_minutes must be from 0 to 1440", source=source)
    if program.scale.slope <= 0 or program.scale.minimum >= program.scale.maximum:
        raise ProgramError("{source}: [scale] needs slope > 0 and minimum < maximum", source=source)
    if program.scoring.method not in SCORING_METHODS:
        raise ProgramError("{source}: [scoring] method must be one of {scoring_methods}", source=source,
                           scoring_methods=', '.join(SCORING_METHODS))
    if program.scoring.prior_sd <= 0 or program.scoring.quadrature_points < 5:
        raise ProgramError("{source}: [scoring] needs prior_sd > 0 and at least 5 quadrature points", source=source)
    if program.duration_minutes <= 0:
        raise ProgramError("{source}: duration_minutes must be positive", source=source)
    kinds = [t.kind for t in program.booking.slots]
    if not kinds or len(set(kinds)) != len(kinds):
        raise ProgramError("{where_booking}: slots need distinct kinds, at least one", where_booking=where_booking)
    for t in program.booking.slots:
        try:
            hour, minute = (int(part) for part in t.starts.split(":"))
            if not (0 <= hour < 24 and 0 <= minute < 60):
                raise ValueError
        except ValueError:
            raise ProgramError("{where_booking}: slot {kind!r} starts at {starts!r}, not HH:MM",
                               where_booking=where_booking, kind=t.kind, starts=t.starts) from None
    if min(program.booking.bookable_days_ahead, program.booking.book_until_days_before,
           program.booking.change_until_days_before, program.booking.move_within_months,
           program.booking.max_changes) < 0:
        raise ProgramError("{where_booking}: day, month and change counts cannot be negative",
                           where_booking=where_booking)
    return program


ITEM_STATUSES = ("draft", "reviewed", "pretest", "operational", "retired")


def _lifecycle(table: dict, source: str) -> tuple[LifecycleStep, ...]:
    where = f"{source}: [lifecycle]"
    steps = []
    for index, raw in enumerate(_require(table, "transitions", list, where)):
        here = f"{where} transitions[{index}]"
        if not isinstance(raw, dict):
            raise ProgramError("{here}: must be a table", here=here)
        step = LifecycleStep(
            from_status=_require(raw, "from", str, here),
            to_status=_require(raw, "to", str, here),
            roles=tuple(_require(raw, "roles", list, here)),
            four_eyes=bool(raw.get("four_eyes", False)),
            calibration=bool(raw.get("calibration", False)),
            parameters=bool(raw.get("parameters", False)),
        )
        for status in (step.from_status, step.to_status):
            if status not in ITEM_STATUSES:
                raise ProgramError("{here}: unknown status {status!r}; one of {item_statuses}", here=here,
                                   status=status, item_statuses=', '.join(ITEM_STATUSES))
        if not step.roles:
            raise ProgramError("{here}: no role may take this step", here=here)
        steps.append(step)
    pairs = [(s.from_status, s.to_status) for s in steps]
    if len(set(pairs)) != len(pairs):
        raise ProgramError("{where}: a transition is listed twice", where=where)
    return tuple(steps)


def _calibration(table: dict, where: str) -> CalibrationSettings:
    prior = table.get("c_prior")
    if prior is not None and prior != "anchors" and not (isinstance(prior, list) and len(prior) == 2 and all(
            isinstance(v, (int, float)) and v > 0 for v in prior)):
        raise ProgramError("{where}: c_prior must be \"anchors\" or two positive numbers [alpha, beta]", where=where)
    settings = CalibrationSettings(
        model=_require(table, "model", str, where),
        c_prior=tuple(float(v) for v in prior) if isinstance(prior, list) else prior,
        c_prior_weight=float(table.get("c_prior_weight", 20.0)),
        min_sittings=_require(table, "min_sittings", int, where),
        min_responses=_require(table, "min_responses", int, where),
        min_point_biserial=_require(table, "min_point_biserial", float, where),
        max_se_b=_require(table, "max_se_b", float, where),
        fit_alpha=_require(table, "fit_alpha", float, where),
        drift_rmsd=_require(table, "drift_rmsd", float, where),
        drift_b=_require(table, "drift_b", float, where),
        drift_window_days=_require(table, "drift_window_days", int, where),
        dif_min_group=_require(table, "dif_min_group", int, where),
    )
    if settings.model not in ("2pl", "3pl"):
        raise ProgramError("{where}: model must be '2pl' or '3pl'", where=where)
    if settings.min_sittings < 1 or settings.min_responses < 1 or settings.drift_window_days < 1 or settings.dif_min_group < 1:
        raise ProgramError("{where}: min_responses, drift_window_days and dif_min_group must be positive", where=where)
    return settings


def _assembly(table: dict, program: ExamProgram, where: str) -> AssemblySettings:
    method = _require(table, "method", str, where)
    if method not in ASSEMBLY_METHODS:
        raise ProgramError("{where}: method must be one of {assembly_methods}, got {method!r}", where=where,
                           assembly_methods=', '.join(ASSEMBLY_METHODS), method=method)
    targets = table.get("targets", "pool")
    scopes = ("total",) + program.field_codes
    if isinstance(targets, dict):
        if set(targets) != set(scopes) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in targets.values()):
            raise ProgramError("{where}: targets must be \"pool\" or a positive information for each of {scopes}",
                               where=where, scopes=', '.join(scopes))
        targets = {k: float(v) for k, v in targets.items()}
    elif targets != "pool":
        raise ProgramError("{where}: targets must be \"pool\" or a table of information by {scopes}", where=where,
                           scopes=', '.join(scopes))
    minimum = _require(table, "category_minimum", int, where)
    maximum = _require(table, "category_maximum", int, where)
    bounds = {c.number: (minimum, maximum) for c in program.categories}
    for key, pair in table.get("category_bounds", {}).items():
        try:
            number = int(key)
        except ValueError:
            raise ProgramError("{where}: category_bounds key {key!r} is not a category number", where=where, key=key) from None
        if number not in bounds:
            raise ProgramError("{where}: category_bounds names category {number}, which is not in the syllabus",
                               where=where, number=number)
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, int) for v in pair)):
            raise ProgramError("{where}: category_bounds {number} must be [minimum, maximum]", where=where,
                               number=number)
        bounds[number] = (pair[0], pair[1])
    settings = AssemblySettings(
        method=method,
        shuffle_options=bool(table.get("shuffle_options", True)),
        targets=targets,
        target_factor=float(table.get("target_factor", 1.0)),
        tolerance=_require(table, "tolerance", float, where),
        max_exposure=_require(table, "max_exposure", float, where),
        exposure_margin=float(table.get("exposure_margin", 0.2)),
        exposure_refresh_seconds=float(table.get("exposure_refresh_seconds", 5.0)),
        max_overlap=_require(table, "max_overlap", float, where),
        randomesque=int(table.get("randomesque", 5)),
        category_bounds=bounds,
    )
    if not 0 < settings.tolerance < 1 or not 0 < settings.max_exposure <= 1 or not 0 <= settings.max_overlap <= 1:
        raise ProgramError("{where}: tolerance, max_exposure and max_overlap are shares between 0 and 1", where=where)
    if settings.target_factor <= 0 or not 0 < settings.exposure_margin <= 1 or settings.randomesque < 1:
        raise ProgramError("{where}: target_factor > 0, 0 < exposure_margin <= 1 and randomesque >= 1 are needed",
                           where=where)
    for number, (low, high) in bounds.items():
        if not 0 <= low <= high:
            raise ProgramError("{where}: category {number} needs 0 <= minimum <= maximum, got [{low}, {high}]",
                               where=where, number=number, low=low, high=high)
    for field in program.fields:
        low = sum(bounds[c][0] for c in field.categories)
        high = sum(bounds[c][1] for c in field.categories)
        if not low <= field.scored <= high:
            raise ProgramError("{where}: the {code} field's {scored} scored items do not fit its category bounds (between "
                               "{low} and {high} items)", where=where, code=field.code, scored=field.scored, low=low,
                               high=high)
    return settings


def program_path(name: str | None = None) -> Path:
    name = name or load_settings().program
    path = Path(name)
    if path.suffix == ".toml":
        return path
    return PROGRAMS_DIR / f"{name}.toml"


def load_program(name: str | None = None) -> ExamProgram:
    """The program named ``name`` (a bundled code or a path to a TOML file; default the
    deployment's ``CBT_PROGRAM``), read once per file."""
    return _load_program(program_path(name))


@cache
def _load_program(path: Path) -> ExamProgram:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProgramError("exam program file not found: {path}", path=path) from None
    except tomllib.TOMLDecodeError as error:
        raise ProgramError("{path}: {error}", path=path, error=error) from None
    return parse_program(data, str(path))
