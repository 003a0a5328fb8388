"""What the bank's services share: the decrypted-content cache under threads, plots drawn in
parallel, and the program's own option labels in the rescoring screens and commands."""
from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import sys
import threading
import uuid

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from itembank import bank, design_plots, exchange, plots
from itembank.bank import ContentCache
from itembank.content import ItemContent
from itembank.models import ItemVersion
from persistence import session_factory
from scoring.models import RescoringCampaign
from tests.helpers import csrf_token, login_staff


def _content(n: int) -> ItemContent:
    return ItemContent(f"Stem {n}", (f"a{n}", f"b{n}", f"c{n}", f"d{n}"), n % 4)


def test_the_content_cache_is_bounded_and_consistent_under_threads():
    cache = ContentCache(50)
    failures: list[BaseException] = []
    start = threading.Barrier(8)

    def worker(seed: int) -> None:
        try:
            start.wait()
            for round_ in range(400):
                keys = [(seed * 7 + round_ * 13 + k) % 400 for k in range(20)]
                cache.put_many({key: _content(key) for key in keys[:10]})
                found = cache.get_many(keys)
                # Whatever is found is the right entry, never a half-evicted one.
                assert all(content.stem == f"Stem {key}" for key, content in found.items())
                assert len(cache) <= 50
        except BaseException as error:  # noqa: BLE001 (re-raised in the test's thread below)
            failures.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [] and len(cache) == 50


def test_contents_by_version_returns_every_version_asked_while_other_threads_evict(engine, monkeypatch):
    # A cache far smaller than what the threads ask for: the old dict cleared itself while another
    # thread read it, which gave a partial result or a KeyError.
    monkeypatch.setattr(bank, "CONTENTS", ContentCache(8))
    with session_factory(engine)() as session:
        ids = session.scalars(select(ItemVersion.id).order_by(ItemVersion.id).limit(120)).all()
    failures: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            with session_factory(engine)() as session:
                for round_ in range(6):
                    wanted = ids[(offset * 11 + round_ * 17) % 100:][:20]
                    got = bank.contents_by_version(session, wanted)
                    assert set(got) == set(wanted)
        except BaseException as error:  # noqa: BLE001
            failures.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_plots_are_drawn_in_parallel_without_pyplot():
    results: dict[int, str] = {}
    failures: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            results[n] = plots.icc_svg(f"item {n}", (1.0 + n / 10, 0.0, 0.2),
                                       {"theta": [-1.0, 1.0], "observed": [0.3, 0.8], "n": [10, 12]})
        except BaseException as error:  # noqa: BLE001
            failures.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [] and all(f"item {n}" in svg and f"a={1.0 + n / 10:.2f}" in svg for n, svg in results.items())
    # pyplot (and its global figure manager) is never loaded by the plots: in a process of its own,
    # since another test may have loaded it in this one.
    drawn = subprocess.run([sys.executable, "-c", "import sys; from itembank import design_plots, plots; "
                            "plots.drift_svg('x', [('A', 0.1, False)], 0.2); "
                            "assert 'matplotlib.pyplot' not in sys.modules"], capture_output=True, text=True)
    assert drawn.returncode == 0, drawn.stderr
    # A drawing that fails leaves nothing behind to leak: the next plot is drawn as usual.
    with pytest.raises(KeyError):
        design_plots.exposure_svg({"loft": {}})
    assert plots.drift_svg("after a failure", [("A", 0.1, False)], 0.2).startswith("<?xml")


KATAKANA = ("ア", "イ", "ウ", "エ")


def test_a_program_with_its_own_option_labels_corrects_keys_by_them(app, client, session, program, tmp_path,
                                                                       monkeypatch, database_url):
    labelled = dataclasses.replace(program, option_labels=KATAKANA, other_labels={})  # the same in every language
    app.extensions["cbt"] = dataclasses.replace(app.extensions["cbt"], program=labelled)
    # A draft, which no sitting draws: the proposals change no one's score.
    item = exchange.create_draft(session, program, code=f"T22-K{uuid.uuid4().hex[:6].upper()}", category=22, note="created",
                                 content=_content(1), actor="psychometrician", actor_role="psychometrician",
                                 now=dt.datetime.now(dt.timezone.utc))
    key = bank.entry(session, item.code).content.key
    corrected = KATAKANA[(key + 1) % 4]
    login_staff(client, "psychometrician", "psychometrician-demo-pass")
    page = client.get("/bank/rescoring/").get_data(as_text=True)
    assert all(f"<option>{label}</option>" in page for label in KATAKANA)
    proposed = client.post("/bank/rescoring/", data={
        "csrf_token": csrf_token(client), "code": item.code, "version": "1", "kind": "key", "key": corrected,
        "reason": "the key was wrong"})
    assert proposed.status_code == 302
    campaign = session.get(RescoringCampaign, int(proposed.headers["Location"].rstrip("/").rsplit("/", 1)[1]))
    assert campaign.amendments[0].key == KATAKANA.index(corrected)
    shown = client.get(proposed.headers["Location"]).get_data(as_text=True)
    assert f"key {corrected}" in shown
    refused = client.post("/bank/rescoring/", data={
        "csrf_token": csrf_token(client), "code": item.code, "version": "1", "kind": "key", "key": "B",
        "reason": "latin label"})
    assert refused.status_code == 422 and "the key is one of ア, イ, ウ, エ" in refused.get_data(as_text=True)

    # The command line reads the labels of the program it runs (CBT_PROGRAM, here a file).
    source = (tmp_path / "katakana.toml")
    from itembank.program import program_path
    text = program_path(None).read_text(encoding="utf-8")
    labels_line = next(line for line in text.splitlines() if line.startswith("option_labels = "))
    source.write_text(text.replace(labels_line, 'option_labels = ["ア", "イ", "ウ", "エ"]'), encoding="utf-8")
    monkeypatch.setenv("CBT_PROGRAM", str(source))
    monkeypatch.setenv("CBT_DATABASE_URL", database_url)
    from delivery.cli import main
    result = CliRunner().invoke(main, ["rescoring", "propose", "--item", item.code, "--version", "1", "--key",
                                       corrected, "--reason", "again", "--as", "psychometrician"])
    assert result.exit_code == 0 and f"key -> {corrected}" in result.output, result.output
    result = CliRunner().invoke(main, ["rescoring", "propose", "--item", item.code, "--version", "1", "--key", "B",
                                       "--reason", "latin", "--as", "psychometrician"])
    assert result.exit_code == 1 and "one of ア, イ, ウ, エ" in result.output
