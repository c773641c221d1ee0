"""The command line: every bad input gives one line naming file, field and reason, and exit 2."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SMALL

from vpp.cli import main


def write(tmp_path: Path, text: str, name="bad.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def small_text() -> str:
    return SMALL.read_text(encoding="utf-8")


def one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


BAD_SCENARIOS = [
    # (edit of the small scenario, field path expected, words expected in the reason)
    (lambda t: t.replace("start = 2024-07-22T00:00:00", ""), "time.start", "missing"),
    (lambda t: t.replace("count = 20", 'count = "many"'), "fleets[0].count", "integer"),
    (lambda t: t.replace("e_max_kwh = 2_000", "e_max_kwh = -5"), "fleets[4].params.e_max_kwh", "greater than 0"),
    (lambda t: t.replace("end = 2024-07-24T00:00:00", "end = 2024-07-19T00:00:00"), "time", "after start"),
    (lambda t: t.replace('type = "battery"', 'type = "flywheel"'), "fleets[4].type", "unknown fleet type"),
    (lambda t: t.replace('node = "coast"', 'node = "harbour"'), "fleets[1].node", "unknown node"),
    (lambda t: t.replace("count = 20", "count = "), "line 24, column 9", "malformed toml"),
    (lambda t: t.replace("p_dc_kwp = 500", 'p_dc_kwp = { dist = "gamma", k = 2 }'), "fleets[0].params.p_dc_kwp",
     "unknown distribution"),
    (lambda t: t.replace("p_dc_kwp = 500", 'p_dc_kwp = { dist = "normal", mean = 500, std = 100 }'),
     "fleets[0].params.p_dc_kwp", "greater than 0"),
    (lambda t: t.replace("import_limit_kw = 20_000", "import_limit_kw = -1"), "nodes[0].import_limit_kw",
     "greater than or equal to 0"),
    (lambda t: t.replace("p_dc_kwp = 500", "p_dc_kwp = 500\ntilt = 20"), "fleets[0].params.tilt", "unknown field"),
    (lambda t: t + '\n[weather]\nsource = "csv"\npath = "missing.csv"\n', "weather.path", "no such file"),
    (lambda t: t + '\n[strategy]\nname = "genius"\n', "strategy.name", "unknown strategy"),
    (lambda t: t + '\n[strategy.options]\ncarbon_price = 3\n', "strategy.options.carbon_price", "unknown field"),
]


@pytest.mark.parametrize("edit,field,reason", BAD_SCENARIOS)
@pytest.mark.parametrize("command", ["validate", "run"])
def test_bad_scenario_gives_one_line_and_exit_2(tmp_path, capsys, edit, field, reason, command):
    path = write(tmp_path, edit(small_text()))
    argv = [command, str(path)] + (["--out", str(tmp_path / "out"), "--quiet"] if command == "run" else [])
    line = one_line_error(capsys, argv)
    assert field in line and reason in line.lower(), line
    assert ("bad.toml" in line) or ("missing.csv" in line)
    assert not (tmp_path / "out").exists()          # nothing written


def test_bad_weather_csv_names_the_csv_and_column(tmp_path, capsys):
    hours = [f"2024-07-{20 + h // 24:02d}T{h % 24:02d}:00,0" for h in range(24 * 6)]
    csv = write(tmp_path, "timestamp,ghi_w_m2\n" + "\n".join(hours) + "\n", "weather.csv")
    path = write(tmp_path, small_text() + f'\n[weather]\nsource = "csv"\npath = "{csv.name}"\n')
    line = one_line_error(capsys, ["validate", str(path)])
    assert "weather.csv" in line and "temp_air_c" in line


def test_unknown_strategy_on_the_command_line(capsys):
    line = one_line_error(capsys, ["run", str(SMALL), "--strategy", "nope", "--quiet"])
    assert "--strategy" in line and "unknown strategy 'nope'" in line


def test_missing_scenario_file(capsys, tmp_path):
    line = one_line_error(capsys, ["validate", str(tmp_path / "nowhere.toml")])
    assert "nowhere.toml" in line and "no such file" in line


def test_out_folder_that_is_not_empty_is_refused_and_kept(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    line = one_line_error(capsys, ["run", str(SMALL), "--out", str(out), "--quiet"])
    assert "not empty" in line
    assert (out / "precious.txt").read_text() == "keep me"


def test_bad_arguments_are_one_line_too(capsys):
    line = one_line_error(capsys, ["run", "--frobnicate"])
    assert "arguments" in line


def test_validate_accepts_the_shipped_scenarios(capsys):
    for name in ("shanghai_lingang.toml", "small_district.toml"):
        assert main(["validate", str(SMALL.parent / name)]) == 0
    assert "ok" in capsys.readouterr().out


def test_run_writes_a_complete_folder(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(SMALL), "--out", str(out), "--csv", "--quiet"]) == 0
    for name in ("scenario.toml", "kpis.json", "report.html", "fleets.parquet", "nodes.parquet",
                 "fleets.csv", "ev_sessions.parquet", "dispatch.parquet"):
        assert (out / name).exists(), name
    kpis = json.loads((out / "kpis.json").read_text())
    assert {"value", "baseline", "delta", "delta_pct", "unit"} <= set(kpis["green_local_consumption_rate"])
    # the resolved scenario is itself a valid scenario that reproduces the run's settings
    assert main(["validate", str(out / "scenario.toml")]) == 0
    assert not list(tmp_path.glob(".run.*"))        # no temporary folder left behind


def test_compare_writes_one_row_per_strategy(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", str(SMALL), "--out", str(out), "--quiet"]) == 0
    table = (out / "comparison.csv").read_text().splitlines()
    assert table[0].startswith("strategy,")
    assert {line.split(",")[0] for line in table[1:]} == {"source_follows_load", "source_load_interaction"}
    for column in ("optimality_gap_frac", "flexibility_captured_frac", "solve_time_s", "unserved_energy_kwh"):
        assert column in table[0].split(",")
    assert (out / "comparison.html").exists()
    assert (out / "source_load_interaction" / "fleets.parquet").exists()


@pytest.mark.skipif(shutil.which("vpp") is None and not Path(sys.executable).with_name("vpp").exists(),
                    reason="console script not installed")
def test_console_script_exit_code():
    exe = shutil.which("vpp") or str(Path(sys.executable).with_name("vpp"))
    proc = subprocess.run([exe, "validate", "/nonexistent/x.toml"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    f = tmp_path / "file.txt"
    f.write_text("x")
    line = one_line_error(capsys, ["run", str(SMALL), "--out", str(f), "--quiet"])
    assert "is a file" in line


def test_unknown_strategy_in_a_comparison_names_the_option(capsys, tmp_path):
    line = one_line_error(capsys, ["compare", str(SMALL), "--strategies", "source_follows_load,nope",
                                   "--out", str(tmp_path / "c"), "--quiet"])
    assert "--strategies" in line and "'nope'" in line


def test_missing_parent_scenario_names_the_extends_field(capsys, tmp_path):
    child = write(tmp_path, 'extends = "no_such_base.toml"\nname = "x"\n', "child.toml")
    line = one_line_error(capsys, ["validate", str(child)])
    assert "child.toml: extends: no such scenario file" in line


def test_a_folder_is_not_a_scenario(capsys, tmp_path):
    line = one_line_error(capsys, ["validate", str(tmp_path)])
    assert "is a folder" in line


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("vpp ")


@pytest.mark.skipif(shutil.which("vpp") is None and not Path(sys.executable).with_name("vpp").exists(),
                    reason="console script not installed")
def test_output_into_a_closed_pipe_is_not_a_traceback(tmp_path):
    exe = shutil.which("vpp") or str(Path(sys.executable).with_name("vpp"))
    proc = subprocess.run(f'"{exe}" run "{SMALL}" --out "{tmp_path / "r"}" --quiet | head -c 10', shell=True,
                          capture_output=True, text=True)
    assert "Traceback" not in proc.stderr
    assert (tmp_path / "r" / "kpis.json").exists()


def test_run_takes_a_perfect_forecast_variant_as_compare_does(tmp_path, capsys, monkeypatch):
    import tomllib

    short = write(tmp_path, f'extends = "{SMALL.as_posix()}"\n[time]\nend = 2024-07-23T00:00:00\n', "short.toml")
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(short), "--strategy", "source_load_interaction:perfect", "--quiet"]) == 0
    (out,) = (tmp_path / "runs").iterdir()
    assert out.name.startswith("short-source_load_interaction-perfect-")      # no ':' in a folder name
    assert tomllib.loads((out / "scenario.toml").read_text())["forecast"]["perfect"] is True
    line = one_line_error(capsys, ["run", str(short), "--strategy", "nope:perfect", "--quiet"])
    assert "--strategy: unknown strategy 'nope'" in line


def test_progress_is_logged_where_stderr_is_not_a_terminal(tmp_path, capsys):
    """Piped or in a batch job a run is not silent: the first and the last step of
    each strategy's run are logged with the simulated time (a line a minute between)."""
    assert main(["run", str(SMALL), "--out", str(tmp_path / "a"), "--strategy", "rule_based"]) == 0
    err = capsys.readouterr().err.splitlines()
    for strategy in ("rule_based", "source_follows_load"):
        lines = [e for e in err if e.startswith(f"{strategy}: ")]
        assert lines[0].startswith(f"{strategy}: 1/192 steps, 2024-07-22 00:15, ")
        assert lines[-1].startswith(f"{strategy}: 192/192 steps, ") and "left" not in lines[-1]
    assert main(["run", str(SMALL), "--out", str(tmp_path / "b"), "--strategy", "rule_based", "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_verbose_logs_every_ten_seconds_even_on_a_terminal(monkeypatch):
    import io

    from vpp import api
    from vpp.scenario import load_scenario

    tty = io.StringIO()
    tty.isatty = lambda: True
    monkeypatch.setattr("sys.stderr", tty)
    timeline = load_scenario(SMALL).timeline()
    update, closer = api._progress("x", "log", timeline)
    assert update.log.every_s == api.VERBOSE_EVERY_S == 10.0
    update(1, timeline.n_steps)
    assert tty.getvalue().startswith("x: 1/192 steps, 2024-07-22 00:15")
    update, bar = api._progress("x", True, timeline)       # a terminal without --verbose: the bar
    assert not isinstance(bar, api._Lines)
    bar.close()


@pytest.mark.parametrize("kind", ["symlink loop", "fifo", "huge"])
def test_a_scenario_path_that_is_no_scenario_file_is_one_line_without_hanging(tmp_path, capsys, kind):
    """A loop of symbolic links, a named pipe (reading it would wait for a writer forever)
    and a file far larger than any scenario: one line each, exit 2."""
    path = tmp_path / "s.toml"
    if kind == "symlink loop":
        path.symlink_to(path)
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        with open(path, "wb") as f:
            f.truncate(20_000_000)                   # sparse: 20 MB without writing them
    line = one_line_error(capsys, ["validate", str(path)])
    assert str(path) in line
    assert {"symlink loop": "loop of symbolic links", "fifo": "named pipe", "huge": "20 MB"}[kind] in line


def _chain(tmp_path, parent_seed=3, child_p_max=1.0, own_seed=None):
    (tmp_path / "parent.toml").write_text(f'name = "parent"\nseed = {parent_seed}\n')
    (tmp_path / "child.toml").write_text(
        'extends = "parent.toml"\n[time]\nstart = 2024-07-22T00:00:00\nend = 2024-07-23T00:00:00\n'
        '[[nodes]]\nname = "a"\nimport_limit_kw = 1000\nexport_limit_kw = 1000\n'
        f'[[fleets]]\nname = "b"\ntype = "battery"\nnode = "a"\ncount = 1\n'
        f'[fleets.params]\np_max_kw = {child_p_max}\ne_max_kwh = 2\n')
    own = "" if own_seed is None else f"seed = {own_seed}\n"
    (tmp_path / "grandchild.toml").write_text('extends = "child.toml"\n' + own)
    return tmp_path / "grandchild.toml"


def test_a_mistake_in_a_parent_names_the_parent_file(tmp_path, capsys):
    """The field's value comes from the file that sets it last in the extends chain."""
    line = one_line_error(capsys, ["validate", str(_chain(tmp_path, parent_seed=-3))])
    assert line.startswith(f"error: {tmp_path / 'parent.toml'}: seed:")
    line = one_line_error(capsys, ["validate", str(_chain(tmp_path, child_p_max=-1))])
    assert line.startswith(f"error: {tmp_path / 'child.toml'}: fleets[0].params.p_max_kw:")
    line = one_line_error(capsys, ["validate", str(_chain(tmp_path, parent_seed=-3, own_seed=-5))])
    assert line.startswith(f"error: {tmp_path / 'grandchild.toml'}: seed:")       # its own value overrides


@pytest.mark.parametrize("base, fleet, params, words", [
    ("tcl_aggregate.toml", "room_acs", "substep_s = 0.001", "substep_s: Input should be greater than or equal to 1"),
    ("small_district.toml", "wind", "roughness_length_m = 5", "roughness_length_m: Input should be less than or"),
    ("small_district.toml", "wind", 'wind_regime = "nowhere"', "'nowhere' is not a wind regime of the weather"),
    ("small_district.toml", "wind", "availability_frac = 0.97\noutage_mttr_h = 0.000001",
     "outage_mttr_h: Input should be greater than or equal to 0.25"),
])
def test_the_issues_bad_input_corpus_is_one_line(tmp_path, capsys, base, fleet, params, words):
    """Cases the bad-input survey found hanging, exhausting memory or passing validate (issue 12)."""
    path = tmp_path / "bad.toml"
    path.write_text(f'extends = "{SMALL.parent / base}"\n[[fleets]]\nname = "{fleet}"\n[fleets.params]\n{params}\n')
    assert words in one_line_error(capsys, ["validate", str(path)])
