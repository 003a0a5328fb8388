"""CSV files and the cbt calibrate / score / link commands."""
import numpy as np
import pytest
from click.testing import CliRunner

import engine
from delivery.cli import main
from engine import io


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(1)
    items = engine.simulate_items(12, "2pl", rng)
    x = engine.simulate_responses(rng.normal(size=1500), items, rng)
    ids = [f"Q{j}" for j in range(12)]
    io.write_responses(folder / "responses.csv", [f"E{i}" for i in range(1500)], ids, x)
    io.write_parameters(folder / "true.csv", ids, items)
    return folder, items, x, ids


def test_responses_round_trip_with_missing_cells(tmp_path):
    x = np.array([[1, 0, -1], [-1, -1, 1]], dtype=np.int8)
    io.write_responses(tmp_path / "r.csv", ["a", "b"], ["i1", "i2", "i3"], x)
    assert (tmp_path / "r.csv").read_text() == "examinee_id,i1,i2,i3\na,1,0,\nb,,,1\n"
    table = io.read_responses(tmp_path / "r.csv")
    assert table.examinee_ids == ["a", "b"] and table.item_ids == ["i1", "i2", "i3"]
    np.testing.assert_array_equal(table.responses, x)


@pytest.mark.parametrize("body, message", [
    ("a,1,0\nb,1,x\n", "row 3, column 3 (i2): value 'x' is not 1, 0 or empty"),
    ("a,1,0\nb,1\n", "row 3: expected 3 cells"),
    ("a,1,0\nb,1,0,1\n", "row 3: expected 3 cells"),
    ("a,1,0\na,0,0\n", "row 3, column 1 (examinee_id): examinee_id 'a' repeats row 2"),
    ("a,1,0\n,0,0\n", "row 3, column 1 (examinee_id): empty examinee_id"),
    ("a,2,0\n", "row 2, column 2 (i1): value '2' is not 1, 0 or empty"),
    ("a,1,10\n", "row 2, column 3 (i2): value '10' is not 1, 0 or empty"),
])
def test_bad_response_files_name_row_and_column(tmp_path, body, message):
    path = tmp_path / "bad.csv"
    path.write_text("examinee_id,i1,i2\n" + body)
    with pytest.raises(io.CSVFormatError, match=message.replace("(", r"\(").replace(")", r"\)")):
        io.read_responses(path)


def test_bad_headers(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("id,i1\na,1\n")
    with pytest.raises(io.CSVFormatError, match="row 1, column 1: the header must start with 'examinee_id'"):
        io.read_responses(path)
    path.write_text("examinee_id,i1,i1\na,1,1\n")
    with pytest.raises(io.CSVFormatError, match="row 1, column 3 \\(i1\\): column name 'i1' repeats column 2"):
        io.read_responses(path)


@pytest.mark.parametrize("row, message", [
    ("q1,abc,0,0", "row 2, column 2 \\(a\\): 'abc' is not a number"),
    ("q1,-1,0,0", "row 2, column 2 \\(a\\): a must be positive"),
    ("q1,1,0,1.5", "row 2, column 4 \\(c\\): c must lie in"),
    ("q1,1,0", "row 2: expected 4 cells"),
])
def test_bad_parameter_files(tmp_path, row, message):
    path = tmp_path / "p.csv"
    path.write_text("item_id,a,b,c\n" + row + "\n")
    with pytest.raises(io.CSVFormatError, match=message):
        io.read_parameters(path)


def test_cli_calibrate_score_link(bank):
    folder, items, x, ids = bank
    runner = CliRunner()
    out = folder / "params.csv"
    result = runner.invoke(main, ["calibrate", str(folder / "responses.csv"), "--model", "2pl", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "EM " in result.output and "log-likelihood" in result.output and "AIC" in result.output
    assert "S-X2 misfit" in result.output and "items not converged or not estimable: 0" in result.output
    params = io.read_parameters(out)
    assert params.item_ids == ids and params.se is not None
    # Same numbers as the API
    api = engine.calibrate(x, "2pl")
    np.testing.assert_allclose(params.items.a, api.items.a, atol=1e-6)

    scores = folder / "scores.csv"
    for method in ("eap", "map", "ml", "wle"):
        result = runner.invoke(main, ["score", str(folder / "responses.csv"), "--params", str(out),
                                      "--method", method, "--out", str(scores)])
        assert result.exit_code == 0, result.output
        lines = scores.read_text().splitlines()
        assert lines[0] == "examinee_id,theta,se" and len(lines) == 1501
    np.testing.assert_allclose([float(line.split(",")[1]) for line in lines[1:]],
                               engine.wle_estimate(x, params.items).theta, atol=1e-6)

    linked = folder / "linked.csv"
    result = runner.invoke(main, ["link", str(out), str(folder / "true.csv"), "--out", str(linked)])
    assert result.exit_code == 0, result.output
    assert "stocking_lord" in result.output and "haebara" in result.output
    # The calibration is on the true scale up to sampling error: A ~ 1, B ~ 0.
    row = next(line for line in result.output.splitlines() if line.startswith("stocking_lord"))
    A, B = (float(v) for v in row.split()[1:3])
    assert abs(A - 1) < 0.1 and abs(B) < 0.1


def test_cli_fixed_anchor_calibration(bank):
    folder, items, x, ids = bank
    io.write_parameters(folder / "anchors.csv", ids[:10], items.subset(np.arange(10)))
    result = CliRunner().invoke(main, ["calibrate", str(folder / "responses.csv"), "--model", "2pl",
                                       "--fixed", str(folder / "anchors.csv"), "--out", str(folder / "p.csv")])
    assert result.exit_code == 0, result.output
    assert "(10 fixed)" in result.output and "latent distribution" in result.output
    params = io.read_parameters(folder / "p.csv")
    np.testing.assert_allclose(params.items.a[:10], items.a[:10], atol=1e-6)


def test_cli_reports_bad_files(bank, tmp_path):
    folder = bank[0]
    bad = tmp_path / "bad.csv"
    bad.write_text("examinee_id,i1\na,7\n")
    result = CliRunner().invoke(main, ["calibrate", str(bad), "--out", str(tmp_path / "p.csv")])
    assert result.exit_code != 0
    assert "row 2, column 2 (i1)" in result.output
    result = CliRunner().invoke(main, ["score", str(folder / "responses.csv"), "--params", str(folder / "anchors.csv"),
                                       "--out", str(tmp_path / "s.csv")])
    assert result.exit_code != 0 and "no parameters for item(s)" in result.output


def test_edge_files_give_messages_not_tracebacks(tmp_path):
    runner = CliRunner()
    header_only = tmp_path / "header.csv"
    header_only.write_text("examinee_id,i1,i2\n")
    result = runner.invoke(main, ["calibrate", str(header_only), "--out", str(tmp_path / "p.csv")])
    assert result.exit_code == 1 and "no examinees" in result.output and "Traceback" not in result.output
    # Quoted cells are legal CSV.
    quoted = tmp_path / "quoted.csv"
    quoted.write_text('examinee_id,i1,i2,i3\ne1,1,0,1\ne2,0,1,\ne3,"1","0",""\n')
    np.testing.assert_array_equal(io.read_responses(quoted).responses, [[1, 0, 1], [0, 1, -1], [1, 0, -1]])
    # ' i1' is i1 again.
    spaced = tmp_path / "spaced.csv"
    spaced.write_text("examinee_id,i1, i1\ne1,1,0\n")
    with pytest.raises(io.CSVFormatError, match="column name 'i1' repeats column 2"):
        io.read_responses(spaced)


def test_cli_not_estimable_items_and_empty_examinees(tmp_path):
    rng = np.random.default_rng(2)
    items = engine.simulate_items(8, "2pl", rng)
    x = engine.simulate_responses(rng.normal(size=800), items, rng)
    x[:, 6] = 1      # everybody right
    x[:, 7] = -1     # nobody presented
    x[5, :6] = -1    # an examinee who answered only the unusable items
    x[9] = -1        # one with no responses at all
    ids = [f"Q{j}" for j in range(8)]
    io.write_responses(tmp_path / "r.csv", [f"E{i}" for i in range(800)], ids, x)
    runner = CliRunner()
    for model in ("rasch", "2pl"):
        result = runner.invoke(main, ["calibrate", str(tmp_path / "r.csv"), "--model", model, "--quiet",
                                      "--out", str(tmp_path / "p.csv")])
        assert result.exit_code == 0, result.output
        assert "Q6: all 799 examinees answered it correctly" in result.output
        assert "Q7: no responses: not estimable" in result.output
        assert "S-X2 misfit (p < .01):" in result.output and "of 6 items" in result.output
        assert "left out: 2 examinee(s) with no responses, 2 item(s) not estimable" in result.output
    params = io.read_parameters(tmp_path / "p.csv")
    assert np.isnan(params.items.a[6:]).all() and not params.converged[6:].any()
    result = runner.invoke(main, ["score", str(tmp_path / "r.csv"), "--params", str(tmp_path / "p.csv"),
                                  "--method", "ml", "--out", str(tmp_path / "s.csv")])
    assert result.exit_code == 0, result.output
    assert "2 item(s) have no estimate" in result.output and "no finite ML estimate" in result.output
    rows = [line.split(",") for line in (tmp_path / "s.csv").read_text().splitlines()[1:]]
    assert rows[9][1:] == ["", ""]
    assert all(row[1] == "" or abs(float(row[1])) < 6 for row in rows)


def test_cli_fixed_covering_every_item(bank):
    folder, items, x, ids = bank
    io.write_parameters(folder / "all.csv", ids, items)
    result = CliRunner().invoke(main, ["calibrate", str(folder / "responses.csv"), "--fixed", str(folder / "all.csv"),
                                       "--out", str(folder / "pall.csv"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "(12 fixed)" in result.output and "parameters 2" in result.output


def test_api_validates_responses_like_check_array():
    with pytest.raises(ValueError, match=r"found 0.5 at row 0, column 1 \(2 such cells\)"):
        engine.calibrate(np.array([[1, 0.5], [0.9, 1], [0, 1]]))
    with pytest.raises(ValueError, match="found nan"):
        engine.eap(np.array([[1, np.nan]]), engine.simulate_items(2, "2pl", 0))
    with pytest.raises(ValueError, match="dtype"):
        engine.eap(np.array([["1", "0"]]), engine.simulate_items(2, "2pl", 0))
    np.testing.assert_array_equal(engine.responses.check_responses(np.array([[1.0, -1.0]])), [[1, -1]])
