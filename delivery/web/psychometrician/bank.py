"""The bank's items (pages, new drafts, edits, lifecycle steps), enemy sets and item statistics."""
from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from delivery import pretest
from delivery.web.context import db, now, program
from delivery.web.errors import http_status
from delivery.web.i18n import LANGUAGES, current_language, user_message
from delivery.web.psychometrician.common import PAGE_SIZE, actor, read_filter, status_name
from delivery.web.psychometrician.inputs import EnemySetForm, ItemForm, LanguageVersionForm, MoveForm, StatisticsFilter
from itembank import bank, calibration, enemies, exchange, lifecycle
from itembank.content import LANGUAGE, ContentError
from itembank.models import ITEM_STATUSES
from persistence.errors import DomainError

blueprint = Blueprint("bank", __name__)


def _item_page(found: bank.BankEntry, *, old: bool = False, move: MoveForm | None = None, status: int = 200):
    item = found.item
    steps = lifecycle.allowed_steps(program(), item, g.staff.username, g.staff.role)
    sets = [s for s in enemies.enemy_sets(db()) if any(m.item_id == item.id for m in s.members)]
    exposure = pretest.exposure_counts(db()).get(item.id, {"shown": 0, "pretest": 0, "answered": 0})
    runs = [(run, entry) for run in calibration.runs(db()) for entry in run.items if entry.item_id == item.id]
    refusal = None
    if move is not None:  # a step refused: its message beside the step's form (or above, if not a step)
        messages = [*move.form_errors, *move.to.errors, *move.reason.errors]
        refusal = {"to": move.to.data, "reason": move.reason.data or "", "message": "; ".join(map(str, messages)),
                   "on_step": move.to.data in {step.to_status for step, _ in steps}}
    content = found.content
    previews = [(language, content.in_language(language) if language else content.shown_in(),
                 program().labels_for(language or program().default_language)) for language in content.languages]
    addable = [language for language in program().languages if content.language
               and not any(language.casefold() == have.casefold() for have in content.languages)]
    # Why the content cannot be edited (the service's own refusal), for the page to say beside the actions.
    not_editable = bank.edit_refusal(item)
    return render_template(
        "psychometrician/item.html", entry=found, old=old, steps=steps, enemy_sets=sets, exposure=exposure,
        previews=previews, addable=addable, language_names=LANGUAGES,
        runs=runs, editable=not_editable is None and not old, refusal=refusal,
        edit_refusal=user_message(not_editable) if not_editable is not None and not old else None,
        category=program().category(item.category), major=program().major_of_category(item.category),
    ), status


def _found(code: str) -> bank.BankEntry:
    found = bank.entry(db(), code)
    if found is None:
        abort(404, description=_("There is no item %(code)s.", code=code))
    return found


@blueprint.get("/items/<code>")
def item(code: str):
    return _item_page(_found(code))


@blueprint.get("/items/<code>/versions/<int:number>")
def item_version(code: str, number: int):
    found = bank.version_entry(db(), code, number)
    if found is None:
        abort(404, description=_("Item %(code)s has no version %(number)s.", code=code, number=number))
    return _item_page(found, old=found.version.id != found.item.current_version.id)


def _edit_page(form: ItemForm, entry: bank.BankEntry | None, status: int = 200):
    return render_template("psychometrician/edit.html", form=form, entry=entry, translating=None,
                           labels=program().labels_for(current_language()), language_names=LANGUAGES,
                           code=entry.item.code if entry else None), status


def _language_page(form: LanguageVersionForm, entry: bank.BankEntry, language: str, status: int = 200):
    return render_template("psychometrician/edit.html", form=form, entry=entry, translating=language,
                           labels=form.labels, language_names=LANGUAGES, code=entry.item.code,
                           exists=entry.content.translation(language) is not None), status


def _asked_language(found: bank.BankEntry) -> str | None:
    """The language ``?language=`` asks to edit, if it is not the item's own (None: its own)."""
    language = (request.args.get("language") or "").strip()
    if not language or language.casefold() == found.content.language.casefold():
        return None
    if not found.content.language:
        raise ContentError("state the language of the item's own text before adding another language",
                           field="language")
    if len(language) > 35 or not LANGUAGE.match(language):
        raise ContentError("{language!r} is not a language tag", field="language", language=language)
    return language


def _edit_language(found: bank.BankEntry, language: str):
    labels = program().labels_for(language)
    version = found.content.translation(language)
    if request.method != "POST":
        data = LanguageVersionForm.values_of(version) if version else None
        return _language_page(LanguageVersionForm(labels, formdata=None, data=data), found, language)
    form = LanguageVersionForm(labels)
    if not form.validate():
        return _language_page(form, found, language, 422)
    try:
        saved = bank.edit_content(db(), program(), found.item.code, form.content(language, found.content), now=now(),
                                  reason=(form.reason.data or "").strip(), **actor())
    except DomainError as error:
        form.refuse(error)
        return _language_page(form, found, language, http_status(error))
    flash(_("Version %(version)s of %(code)s saved.", version=saved.version, code=found.item.code))
    return redirect(url_for(".item", code=found.item.code))


@blueprint.route("/items/new", methods=["GET", "POST"])
def new_item():
    form = ItemForm(program())
    if not form.is_submitted():
        form.language.data = program().default_language
        return _edit_page(form, None)
    if form.validate():
        try:
            created = exchange.create_draft(db(), program(), code=form.code.data, category=form.category.data,
                                            content=form.content(None), now=now(), note="created", **actor())
        except DomainError as error:
            form.refuse(error)
            return _edit_page(form, None, http_status(error))
        flash(_("Draft %(code)s created.", code=created.code))
        return redirect(url_for(".item", code=created.code))
    return _edit_page(form, None, 422)


@blueprint.route("/items/<code>/edit", methods=["GET", "POST"])
def edit_item(code: str):
    found = _found(code)
    language = _asked_language(found)
    if language is not None:
        return _edit_language(found, language)
    if request.method != "POST":
        return _edit_page(ItemForm(program(), new=False, data=ItemForm.values_of(found.content)), found)
    form = ItemForm(program(), new=False)
    if form.validate():
        try:
            version = bank.edit_content(db(), program(), code, form.content(found.content), now=now(),
                                        reason=(form.reason.data or "").strip(), **actor())
        except DomainError as error:
            form.refuse(error)
            return _edit_page(form, found, http_status(error))
        flash(_("Version %(version)s of %(code)s saved.", version=version.version, code=code))
        return redirect(url_for(".item", code=code))
    return _edit_page(form, found, 422)


@blueprint.post("/items/<code>/status")
def move_item(code: str):
    form = MoveForm()
    try:
        form.checked()
        lifecycle.move(db(), program(), code, form.to.data, now=now(), reason=(form.reason.data or "").strip(),
                       **actor())
    except DomainError as error:
        found = bank.entry(db(), code)
        if found is None:
            raise
        form.refuse(error)
        return _item_page(found, move=form, status=http_status(error))
    flash(_("%(code)s is now %(status)s.", code=code, status=status_name(form.to.data)))
    return redirect(url_for(".item", code=code))


# Enemy sets ----------------------------------------------------------------------------------

def _enemies_page(form: EnemySetForm, status: int = 200):
    return render_template("psychometrician/enemies.html", sets=enemies.enemy_sets(db()), form=form), status


@blueprint.get("/enemies")
def enemy_list():
    return _enemies_page(EnemySetForm(formdata=None))


@blueprint.post("/enemies")
def save_enemies():
    form = EnemySetForm()
    if not form.validate():
        return _enemies_page(form, 422)
    try:
        saved = enemies.save_enemy_set(db(), form.name.data, form.codes, now=now(),
                                       note=(form.note.data or "").strip(), **actor())
    except DomainError as error:
        form.refuse(error)
        return _enemies_page(form, http_status(error))
    flash(_("Enemy set %(name)s saved.", name=saved.name))
    return redirect(url_for(".enemy_list"))


@blueprint.post("/enemies/<name>/delete")
def delete_enemies(name: str):
    enemies.delete_enemy_set(db(), name, now=now(), **actor())
    flash(_("Enemy set %(name)s deleted.", name=name))
    return redirect(url_for(".enemy_list"))


# Statistics ----------------------------------------------------------------------------------

@blueprint.get("/statistics")
def statistics():
    filters = read_filter(StatisticsFilter(request.args))
    since = filters.since.moment
    exposure = pretest.exposure_counts(db(), since=since)
    total = pretest.sittings_count(db(), since=since)
    latest: dict[int, object] = {}
    for run in reversed(calibration.runs(db())):
        for entry in run.items:
            latest[entry.item_id] = entry
    rows = []
    for e in bank.browse(db(), status=filters.status.data or None):
        shown = exposure.get(e.item.id, {}).get("shown", 0)
        stats = latest.get(e.item.id)
        rows.append({"entry": e, "shown": shown, "rate": shown / total if total else None,
                     "p_value": stats.statistics.get("p_value") if stats is not None else None,
                     "point_biserial": stats.statistics.get("point_biserial") if stats is not None else None,
                     "run_id": stats.run_id if stats is not None else None})
    rows.sort(key=lambda r: -(r["shown"]))
    number, size = filters.page.data or 1, PAGE_SIZE
    pages = max(1, -(-len(rows) // size))
    if number > pages:
        abort(404, description=_("There is no page %(page)s: the list has %(pages)s.", page=number, pages=pages))
    here = {key: value for key in ("since", "status") if (value := request.args.get(key, ""))}
    return render_template("psychometrician/statistics.html", rows=rows[(number - 1) * size:number * size],
                           sittings=total, since=request.args.get("since", ""), status=request.args.get("status", ""),
                           statuses=ITEM_STATUSES, page=number, pages=pages, here=here, total=len(rows),
                           first=(number - 1) * size + 1 if rows else 0, last=min(number * size, len(rows)),
                           endpoint="psychometrician.bank.statistics")
