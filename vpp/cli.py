"""Command line: ``vpp run``, ``vpp compare``, ``vpp sweep``, ``vpp validate``, ``vpp list``.

Thin by design: it parses arguments, calls :mod:`vpp.api`, writes the run
folder and prints a summary.  A user mistake prints one line
(``source: field: reason``) and exits with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import signal
import sys
import threading
from pathlib import Path

from vpp.errors import InputError
from vpp.outdir import claim_output, estimate_run_bytes
from vpp.results import package_version

__all__ = ["main"]

HEADLINE = ("green_local_consumption_rate", "curtailment_rate", "self_sufficiency", "total_cost_cny",
            "co2_kg", "peak_import_kw", "ev_energy_not_served_kwh", "comfort_violation_kh")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        raise InputError(self.prog, "arguments", message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="vpp", description="Virtual power plant aggregation simulator.")
    p.add_argument("--version", action="version", version=f"vpp {package_version()}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="simulate one strategy (and the baseline) and write a run folder")
    run.add_argument("scenario", nargs="?", help="scenario TOML (default: the embedded shanghai_lingang.toml)")
    run.add_argument("--strategy", help="strategy name; NAME:perfect runs NAME with perfect forecasts "
                                        "(default: the scenario's strategy)")
    _output_args(run, "<strategy>")
    cmp_ = sub.add_parser("compare", help="run several strategies on the same draws and compare them")
    cmp_.add_argument("scenario", nargs="?", help="scenario TOML (default: the embedded one)")
    cmp_.add_argument("--strategies", default="source_follows_load,source_load_interaction",
                      help="comma-separated strategy names; NAME:perfect runs NAME with perfect forecasts "
                           "(default: %(default)s)")
    _output_args(cmp_, "compare")
    sw = sub.add_parser("sweep", help="run a parameter sweep (scenario x parameters x seeds x strategies) on Dask")
    sw.add_argument("spec", help="sweep TOML (base scenario, parameters, seeds, strategies)")
    sw.add_argument("--out", help="sweep folder; given again, the sweep resumes (default: sweeps/<spec>)")
    sw.add_argument("--scheduler", help="address of a running Dask scheduler (default: a local cluster)")
    sw.add_argument("--workers", type=_positive_int, help="worker processes of the local cluster (default: one "
                                                          "per core)")
    sw.add_argument("--dry-run", action="store_true", help="check the spec and count the runs, done and to do; "
                                                            "run and write nothing")
    sw.add_argument("--quiet", action="store_true", help="no progress bar")
    val = sub.add_parser("validate", help="check a scenario without running it")
    val.add_argument("scenario", help="scenario TOML")
    val.add_argument("--estimate", action="store_true", help="also time the first days of the run and estimate "
                                                              "how long the whole run takes on this machine")
    val.add_argument("--strategy", help="the strategy to estimate for (default: the scenario's)")
    sub.add_parser("list", help="list registered fleet types and strategies")
    return p


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n} is not at least 1")
    return n


def _output_args(p, label: str):
    p.add_argument("--out", help=f"output folder, new or empty (default: runs/<scenario>-{label}-<time>)")
    p.add_argument("--csv", action="store_true", help="also write time series as CSV")
    talk = p.add_mutually_exclusive_group()
    talk.add_argument("--quiet", action="store_true", help="no progress bar or log lines")
    talk.add_argument("--verbose", action="store_true", help="log lines of simulated time every 10 s (without it: "
                                                             "a bar on a terminal, a line a minute otherwise)")


def _progress(args) -> bool | str:
    return False if args.quiet else "log" if getattr(args, "verbose", False) else True


def _out_dir(args, label: str) -> Path:
    """``--out``, or a new folder under ``runs/`` (checked and claimed by :func:`vpp.outdir.claim_output`)."""
    if args.out:
        return Path(args.out)
    stem = Path(args.scenario).stem if args.scenario else "shanghai_lingang"
    base = Path("runs") / f"{stem}-{label}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    out, i = base, 1
    while out.exists():
        i += 1
        out = base.with_name(f"{base.name}-{i}")
    return out


def _fmt(v: float, unit: str) -> str:
    if v != v:
        return "n/a"
    if unit == "-":
        return f"{v:.4f}"
    return f"{v:,.1f}"


def _print_kpis(kpis) -> None:
    print(f"{'KPI':34s} {'value':>16s} {'baseline':>16s} {'delta':>14s}  unit")
    for name in HEADLINE:
        row = kpis.loc[name]
        print(f"{name:34s} {_fmt(row['value'], row['unit']):>16s} {_fmt(row['baseline'], row['unit']):>16s} "
              f"{_fmt(row['delta'], row['unit']):>14s}  {row['unit']}")


def _print_table(table) -> None:
    """Headline KPIs (rows) per strategy (columns), formatted like ``vpp run``."""
    from vpp.kpi import KPI_META

    names = list(table.index)
    print(f"{'KPI':34s} " + " ".join(f"{n:>24s}" for n in names) + "  unit")
    extra = {"optimality_gap_frac": "-", "flexibility_captured_frac": "-", "solve_time_s": "s",
             "value_of_perfect_information_cny": "CNY"}
    if "cost_of_faults_cny" in table.columns and table["cost_of_faults_cny"].notna().any():
        extra["cost_of_faults_cny"] = "CNY"
    rows = [(k, KPI_META[k][0]) for k in HEADLINE] + [(k, u) for k, u in extra.items() if k in table.columns]
    for kpi, unit in rows:
        print(f"{kpi:34s} " + " ".join(f"{_fmt(table.loc[n, kpi], unit):>24s}" for n in names) + f"  {unit}")


def _tell(line: str) -> None:
    print(line, file=sys.stderr)


def _estimate_bytes(sc, n_runs: int) -> int:
    """What saving *n_runs* runs of *sc* writes at most (:func:`vpp.outdir.estimate_run_bytes`)."""
    counts = {f.name: f.count for f in sc.fleets}
    return estimate_run_bytes(sc.timeline().n_steps, len(sc.nodes), len(sc.fleets),
                              per_asset_columns=sum(counts[n] for n in sc.output.per_asset), n_runs=n_runs)


def _cmd_run(args) -> None:
    from vpp import api
    from vpp.dashboards import run_report

    sc = api.load(args.scenario)
    name = args.strategy or sc.strategy.name
    out = _out_dir(args, name.replace(":", "-"))     # folder names portable to every OS
    with claim_output(out, _estimate_bytes(sc, 1), notify=_tell) as out:
        res = api.run(args.scenario, strategy=args.strategy, progress=_progress(args))
        res.save(out, csv=args.csv, report_html=run_report(res))
    _print_kpis(res.kpis)
    print(f"\nwrote {out}/ (report.html, kpis.json, scenario.toml, *.parquet{', *.csv' if args.csv else ''})")


def _cmd_compare(args) -> None:
    from vpp import api
    from vpp.dashboards import comparison_report
    from vpp.results import write_atomically

    names = tuple(s.strip() for s in args.strategies.split(",") if s.strip())
    if not names:
        raise InputError("--strategies", args.strategies, "name at least one strategy")
    sc = api.load(args.scenario)
    out = _out_dir(args, "compare")

    def fill(tmp: Path):
        comp.table.to_csv(tmp / "comparison.csv")
        (tmp / "comparison.html").write_text(comparison_report(comp), encoding="utf-8")
        for name, r in comp.results.items():
            r.save(tmp / name.replace(":", "-"), csv=args.csv)     # folder names portable to every OS

    with claim_output(out, _estimate_bytes(sc, len(names) + 1), notify=_tell) as out:
        comp = api.compare(args.scenario, names, progress=_progress(args))
        write_atomically(out, fill)
    _print_table(comp.table)
    print(f"\nwrote {out}/ (comparison.csv, comparison.html, one folder per strategy)")


def _cmd_sweep(args) -> None:
    from vpp.sweeps import sweep

    try:
        res = sweep(args.spec, args.out, scheduler=args.scheduler, workers=args.workers, progress=not args.quiet,
                    dry_run=args.dry_run)
    except Terminated:
        raise
    except KeyboardInterrupt:
        raise KeyboardInterrupt("interrupted: every run that finished is kept; the same command resumes the sweep") \
            from None
    if args.dry_run:
        t = res.table
        points = len(t.drop_duplicates([*res.varied, "seed"])) if len(t) else 0
        print(f"{res.folder}: {len(t)} runs ({points} points x seeds, {t['strategy'].nunique()} strategies with "
              f"the baseline): {res.skipped} done, {len(t) - res.skipped} to run; nothing was run or written")
        return
    n_failed = len(res.failed)
    print(f"{len(res.table)} runs: {res.computed} run now, {res.skipped} already done, {n_failed} failed "
          f"({res.elapsed_s:.0f} s)")
    for line in res.failed[:10]:
        print(f"  failed: {line}")
    if n_failed > 10:
        print(f"  ... and {n_failed - 10} more (sweep.parquet, column error)")
    print(f"\nwrote {res.folder}/ (sweep.parquet, sweep.html, runs/)")


def _cmd_validate(args) -> None:
    from vpp import api

    sc = api.validate(args.scenario, args.strategy)

    def count(n, word):
        return f"{n} {word}{'' if n == 1 else 's'}"

    print(f"{args.scenario}: ok ({sc.name}: {count(len(sc.fleets), 'fleet')}, {count(len(sc.nodes), 'node')}, "
          f"{count(sc.timeline().n_steps, 'step')})", flush=True)
    if args.estimate:
        from vpp.estimate import estimate_run_time

        name = args.strategy or sc.strategy.name
        print(f"vpp run --strategy {name}: {estimate_run_time(args.scenario, args.strategy)}", flush=True)


def _cmd_list(args) -> None:
    from vpp.assets import FLEET_TYPES
    from vpp.optimizer import STRATEGIES

    print("fleet types:", ", ".join(sorted(FLEET_TYPES)))
    print("strategies: ", ", ".join(sorted(STRATEGIES)))


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so it unwinds as an interrupt does."""


def _on_sigterm(signum, frame):
    raise Terminated


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """While the command runs, SIGTERM (a scheduler's or ``kill``'s) unwinds like Ctrl-C:
    half-written folders are removed and claims released (only in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vpp`` console script; returns the exit status."""
    try:
        with _sigterm_as_interrupt():
            args = _parser().parse_args(argv)
            {"run": _cmd_run, "compare": _cmd_compare, "sweep": _cmd_sweep, "validate": _cmd_validate,
             "list": _cmd_list}[args.command](args)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Terminated:
        print("terminated: nothing half-written was left", file=sys.stderr)
        return 143                      # 128 + SIGTERM, as the shell reports a process it terminated
    except KeyboardInterrupt as e:
        print(str(e) or "interrupted: nothing was written", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `vpp run | head`: the reader left; the run folder is complete
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
