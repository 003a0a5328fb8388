"""What the psychometrician's pages accept, as WTForms forms.

Each form parses and checks its fields; a field that is wrong carries its message,
which the page shows beside the field (``psychometrician/_fields.html``). A service's
refusal that names a field (``DomainError.field``) is shown there too
(:meth:`Form.refuse`); any other refusal above the form.
"""
from __future__ import annotations

import base64
import dataclasses
import datetime as dt

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DateField,
    FieldList,
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from delivery.design_studies import check_candidates
from delivery.web.i18n import current_language, user_message
from itembank.bank import SORT_KEYS, check_code
from itembank.content import FIGURE_TYPES, ContentError, ItemContent, LanguageVersion
from itembank.models import ITEM_STATUSES
from itembank.program import ExamProgram
from persistence.errors import DomainError, InvalidInput


class Form(FlaskForm):
    """A form of the psychometrician's area. CSRF is checked for every request by the app
    (``CSRFProtect``), so the form does not check it a second time."""

    class Meta:
        csrf = False

    def refuse(self, error: DomainError) -> None:
        """Show a service's refusal beside the field it names, else above the form."""
        field = self._fields.get(error.field) if error.field else None
        if field is not None and not isinstance(field, FieldList):
            field.errors = [*field.errors, user_message(error)]
        else:
            self.form_errors.append(user_message(error))

    def first_error(self) -> str:
        """The first problem, as 'field: message' with the field's name in the request (for a
        refusal that has no page to show it on)."""
        for field in self._fields.values():
            if field.errors:
                return f"{field.name}: {field.errors[0]}"
        return str(self.form_errors[0]) if self.form_errors else _("the request is not valid")

    def checked(self) -> None:
        """Validate, or raise InvalidInput with the first problem and the field it is about."""
        if self.validate():
            return
        for name, field in self._fields.items():
            if field.errors:
                raise InvalidInput(str(field.errors[0]), field=name)
        raise InvalidInput(self.first_error())


class Day(DateField):
    """A date (YYYY-MM-DD), read as the start of that day in UTC."""

    def __init__(self, label=None, validators=None, **kwargs):
        super().__init__(label, validators or [Optional()], format="%Y-%m-%d", **kwargs)

    def process_formdata(self, valuelist):
        text = (valuelist[0] if valuelist else "").strip()
        if not text:
            self.data = None
            return
        try:
            self.data = dt.date.fromisoformat(text)
        except ValueError:
            self.data = None
            raise ValueError(_("'%(text)s' is not a date (YYYY-MM-DD)", text=text)) from None

    @property
    def moment(self) -> dt.datetime | None:
        return dt.datetime.combine(self.data, dt.time(), dt.timezone.utc) if self.data else None


class Whole(IntegerField):
    """A whole number; empty is none (``InputRequired`` says when one is needed), anything else a
    message in our words."""

    def __init__(self, label=None, validators=None, message: str = _l("enter a whole number"), **kwargs):
        super().__init__(label, validators, **kwargs)
        self.message = message

    def process_formdata(self, valuelist):
        text = (valuelist[0] if valuelist else "") or ""
        if not str(text).strip():
            self.data = None
            return
        try:
            self.data = int(str(text).strip())
        except ValueError:
            self.data = None
            raise ValueError(self.message) from None


def _code(form, field) -> None:
    try:
        field.data = check_code(field.data)
    except InvalidInput as error:
        raise ValidationError(user_message(error)) from None


# The bank -------------------------------------------------------------------------------------

class BankFilter(Form):
    field = SelectField(validators=[Optional()], validate_choice=False)
    status = SelectField(validators=[Optional()], validate_choice=False)
    category = Whole(validators=[Optional()], message=_l("a category is a number"))
    q = StringField(filters=[lambda v: (v or "").strip()])
    sort = SelectField(validators=[Optional()], validate_choice=False)
    order = SelectField(validators=[Optional()], validate_choice=False)
    page = Whole(validators=[Optional(), NumberRange(min=1, message=_l("a page is a number from 1"))],
                 message=_l("a page is a number from 1"))

    def __init__(self, program: ExamProgram, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.program = program

    def validate_sort(self, field) -> None:
        if field.data and field.data not in SORT_KEYS:
            raise ValidationError(_("unknown sort; one of %(keys)s", keys=", ".join(SORT_KEYS)))

    def validate_order(self, field) -> None:
        if field.data and field.data not in ("asc", "desc"):
            raise ValidationError(_("the order is asc or desc"))

    def validate_field(self, field) -> None:
        if field.data and field.data not in self.program.field_codes:
            raise ValidationError(_("unknown field '%(field)s'", field=field.data))

    def validate_status(self, field) -> None:
        if field.data and field.data not in ITEM_STATUSES:
            raise ValidationError(_("unknown status '%(status)s'", status=field.data))


class StatisticsFilter(Form):
    since = Day("Sittings started since")
    status = SelectField(validators=[Optional()], validate_choice=False)
    page = Whole(validators=[Optional(), NumberRange(min=1, message=_l("a page is a number from 1"))],
                 message=_l("a page is a number from 1"))

    def validate_status(self, field) -> None:
        if field.data and field.data not in ITEM_STATUSES:
            raise ValidationError(_("unknown status '%(status)s'", status=field.data))


class Period(Form):
    """The slot dates of the operation's statistics, both inclusive."""

    since = Day("Slots from")
    until = Day("to")


class ItemForm(Form):
    """A new item (code and category) or new content of an existing one."""

    code = StringField("Item code", validators=[InputRequired(_l("give the item code")), _code])
    category = SelectField("Middle category", coerce=int,
                           validators=[InputRequired(_l("choose the item's middle category"))],
                           invalid_value_message=_l("choose the item's middle category"),
                           invalid_choice_message=_l("choose a middle category of the syllabus"))
    stem = TextAreaField("Stem", validators=[InputRequired(_l("write the stem"))])
    table = TextAreaField("Table")
    figure = FileField("Figure")
    figure_alt = StringField("Text alternative of the figure")
    remove_figure = BooleanField("Remove the figure")
    options = FieldList(StringField(validators=[InputRequired(_l("every option needs its text"))]))
    key = RadioField("Key", coerce=int, validators=[InputRequired(_l("choose the key"))],
                     invalid_value_message=_l("choose the key"), invalid_choice_message=_l("choose the key among the options"))
    rationale = TextAreaField("Rationale")
    language = StringField("Language of the text", validators=[Length(max=35)])
    reason = StringField("What changed and why", validators=[Length(max=500)])

    def __init__(self, program: ExamProgram, *args, new: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        labels = program.labels_for(current_language())
        while len(self.options.entries) < len(labels):
            self.options.append_entry()
        del self.options.entries[len(labels):]
        self.key.choices = [SelectChoice(index, label) for index, label in enumerate(labels)]
        self.category.choices = [SelectChoice(c.number, f"{c.number}. {c.name} ({c.field})")
                                 for c in program.categories]
        if not new:  # an edit keeps the item's code and category
            del self.code
            del self.category

    @staticmethod
    def values_of(content: ItemContent) -> dict:
        """The form's data for ``content`` (the edit page before anything is sent)."""
        return {"stem": content.stem, "options": list(content.options), "key": content.key,
                "rationale": content.rationale, "table": table_text(content.table), "language": content.language,
                "figure_alt": content.figure["alt"] if content.figure else ""}

    def content(self, previous: ItemContent | None) -> ItemContent:
        """The item content the form describes; the figure is kept unless replaced or removed.
        ContentError (with the field at fault) if it cannot be an item."""
        table = table_of(self.table.data)
        figure = previous.figure if previous else None
        upload = self.figure.data
        alt = (self.figure_alt.data or "").strip()
        if self.remove_figure.data:
            figure = None
        elif upload and getattr(upload, "filename", ""):
            if upload.mimetype not in FIGURE_TYPES:
                raise ContentError("a figure must be one of {types}, not {given}", field="figure",
                                   types=", ".join(FIGURE_TYPES), given=upload.mimetype)
            figure = {"media_type": upload.mimetype, "data": base64.b64encode(upload.read()).decode(), "alt": alt}
        elif figure is not None and alt:
            figure = {**figure, "alt": alt}
        edited = {"stem": (self.stem.data or "").strip(), "options": tuple(o.strip() for o in self.options.data),
                  "key": self.key.data, "rationale": (self.rationale.data or "").strip(), "table": table,
                  "figure": figure, "language": (self.language.data or "").strip()}
        # What the form does not show (a stimulus, shuffle flags, QTI identifiers) stays as it was.
        return dataclasses.replace(previous, **edited) if previous else ItemContent(**edited)


def table_of(text: str | None) -> dict | None:
    """A table typed as one row per line, cells separated by |, the first line the header."""
    lines = [[cell.strip() for cell in line.split("|")] for line in (text or "").splitlines() if line.strip()]
    return {"header": lines[0], "rows": lines[1:]} if lines else None


def table_text(table: dict | None) -> str:
    if not table:
        return ""
    return "\n".join(" | ".join(map(str, row)) for row in [table["header"], *table["rows"]])


class LanguageVersionForm(Form):
    """An item's text in another language than its own: the key, the figure's image and the
    parameters stay the item's. An empty table keeps the item's own table."""

    stem = TextAreaField("Stem")
    table = TextAreaField("Table")
    figure_alt = StringField("Text alternative of the figure")
    options = FieldList(StringField())
    rationale = TextAreaField("Rationale")
    remove = BooleanField("Remove this language version")
    reason = StringField("What changed and why", validators=[Length(max=500)])

    def __init__(self, labels: tuple[str, ...], *args, **kwargs):
        super().__init__(*args, **kwargs)
        while len(self.options.entries) < len(labels):
            self.options.append_entry()
        del self.options.entries[len(labels):]
        self.labels = labels

    @staticmethod
    def values_of(version: LanguageVersion) -> dict:
        return {"stem": version.stem, "options": list(version.options), "rationale": version.rationale,
                "table": table_text(version.table), "figure_alt": version.figure_alt}

    def content(self, language: str, previous: ItemContent) -> ItemContent:
        """``previous`` with its text in ``language`` as the form gives it (or without it, when
        removed); ContentError (with the field at fault) if it cannot be."""
        if self.remove.data:
            return previous.without_language(language)
        edited = {"stem": (self.stem.data or "").strip(), "options": tuple((o or "").strip() for o in self.options.data),
                  "rationale": (self.rationale.data or "").strip(), "table": table_of(self.table.data),
                  "figure_alt": (self.figure_alt.data or "").strip()}
        # What the form does not show (a translated passage, instructions, title) stays as it was.
        existing = previous.translation(language)
        version = dataclasses.replace(existing, **edited) if existing else LanguageVersion(language=language, **edited)
        return previous.with_translation(version)


class MoveForm(Form):
    to = HiddenField(validators=[InputRequired(_l("say which status the item moves to"))])
    reason = StringField(validators=[Length(max=500)])


class EnemySetForm(Form):
    name = StringField("Name", validators=[InputRequired(_l("name the set")), Length(max=64)])
    items = StringField("Item codes", validators=[InputRequired(_l("give at least two item codes"))])
    note = StringField("Note", validators=[Length(max=500)])

    @property
    def codes(self) -> list[str]:
        return (self.items.data or "").replace(",", " ").split()


class ReasonForm(Form):
    reason = StringField("Reason", validators=[Length(max=500)])


class RequiredReasonForm(Form):
    reason = StringField("Reason", validators=[InputRequired(_l("give a reason")), Length(max=500)])


# Exchange -------------------------------------------------------------------------------------

MODES = [SelectChoice("all", _l("import nothing (all or nothing)")), SelectChoice("valid", _l("import the good items"))]


class NativeImportForm(Form):
    package = FileField("Export file (.json)")
    mode = RadioField(choices=MODES, default="all", invalid_choice_message=_l("choose all or valid"))

    def validate_package(self, field) -> None:
        if not field.data or not getattr(field.data, "filename", ""):
            raise ValidationError(_("choose a file to import"))


class QtiImportForm(NativeImportForm):
    package = FileField("Package (.zip)")
    category = SelectField(coerce=lambda v: int(v) if v not in (None, "") else None, validate_choice=False)


class Window(Form):
    """A window of finished sittings: ``from`` (inclusive) and ``to`` (exclusive) dates."""

    start = Day("Sittings finished from", name="from")
    end = Day("until (not including)", name="to")


class RunForm(Window):
    kind = RadioField(choices=[SelectChoice("pretest"), SelectChoice("drift")], default="pretest",
                      invalid_choice_message=_l("kind must be pretest or drift"))


class DecisionForm(Form):
    decision = RadioField(choices=[SelectChoice("approve"), SelectChoice("reject"), SelectChoice("acknowledge")],
                          validators=[InputRequired(_l("choose approve, reject or acknowledge"))],
                          invalid_choice_message=_l("decision must be approve, reject or acknowledge"))
    note = StringField("Note", validators=[Length(max=500)])


# Forms and studies ----------------------------------------------------------------------------

class AssembleForm(Form):
    count = Whole("Forms", validators=[InputRequired(_l("enter how many forms to assemble"))],
                  message=_l("enter how many forms to assemble"))
    note = StringField("Note", validators=[Length(max=500)], filters=[lambda v: (v or "").strip()])


class StudyForm(Form):
    candidates = Whole("Candidates", validators=[InputRequired(_l("give the number of candidates"))],
                       message=_l("the number of candidates is a whole number"))
    pool = StringField("Pool", default="bank", filters=[lambda v: (v or "").strip()],
                       validators=[InputRequired(_l("give the pool: bank or synthetic:N"))])
    forms = Whole("Pre-assembled forms", default=10, validators=[InputRequired(_l("give the number of forms"))],
                  message=_l("the number of forms is a whole number"))
    seed = Whole("Seed", default=1, validators=[Optional()], message=_l("the seed is a whole number"))
    design = SelectMultipleField("Designs", choices=[SelectChoice("loft", "LOFT"),
                                                     SelectChoice("forms", _l("Pre-assembled forms"))],
                                 default=["loft", "forms"], option_widget=CheckboxInput(),
                                 widget=ListWidget(prefix_label=False),
                                 invalid_choice_message=_l("designs are loft and forms"))

    def __init__(self, limit: int, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.limit = limit

    def validate_candidates(self, field) -> None:
        try:  # the service's own check, so the page and the service state one limit
            check_candidates(field.data, self.limit)
        except InvalidInput as error:
            raise ValidationError(user_message(error)) from None


# Rescoring ------------------------------------------------------------------------------------

class ProposeForm(Form):
    code = StringField("Item code", validators=[InputRequired(_l("give the item code"))],
                       filters=[lambda v: (v or "").strip().upper()])
    version = Whole("Version", validators=[InputRequired(_l("give the version")),
                                           NumberRange(min=1, message=_l("versions count from 1"))],
                    message=_l("the version is a whole number"))
    kind = RadioField(choices=[SelectChoice("key", _l("Correct the key")),
                               SelectChoice("withdrawn", _l("Withdraw the item from scoring"))],
                      validators=[InputRequired(_l("choose the change"))],
                      invalid_choice_message=_l("the change is a corrected key or a withdrawal"))
    key = SelectField("Corrected key", validate_choice=False)  # only a key correction needs one
    reason = TextAreaField("Reason", validators=[InputRequired(_l("say why the scoring changes")), Length(max=500)])

    def __init__(self, program: ExamProgram, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.program = program
        self.labels = program.labels_for(current_language())  # offered in the reader's labels: ア or A
        self.key.choices = [SelectChoice(label) for label in self.labels]

    def validate_key(self, field) -> None:
        # A label of any of the program's languages names the same option (the key is the item's).
        if self.kind.data == "key" and self.program.option_index(field.data or "") is None:
            raise ValidationError(_("the key is one of %(labels)s", labels=", ".join(self.labels)))

    @property
    def key_index(self) -> int | None:
        """The corrected key's position among the program's options (None when the item is withdrawn)."""
        return self.program.option_index(self.key.data) if self.kind.data == "key" else None
