"""Where source-load interaction matters: local green-power use against renewable penetration.

Runs the sweep of ``hosting_study.toml`` (or another spec with a ``renewables``
scale) on Dask and prints, per settlement and penetration, the local green use
and curtailment of each strategy (mean over seeds and seasons, with the 95 %
interval over seeds), the penetration from which the baseline wastes more than
``--waste`` of the green power (over the seasons, and in each), and the share of
the baseline's waste each strategy recovers.  It writes ``hosting_study.html`` in
the sweep's folder: local green use, curtailment and CO2 against penetration, a
panel per settlement and season, and each strategy's difference from the baseline
on the same draws.  The sweep's own page, ``sweep.html``, plots every KPI.

Run: ``python examples/hosting_study.py [SPEC] [--out DIR] [--scheduler ADDR] [--workers N]``
(the default spec is this folder's ``hosting_study.toml``; given the same
``--out`` again, the sweep resumes where it stopped).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

import vpp
from vpp.dashboards import seed_summary

BASELINE = "source_follows_load"
SCALE = "renewables"


def by_penetration(table: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds (and seasons) of local green use and curtailment per settlement,
    penetration and strategy, with the 95 % half-width over seeds. [-]"""
    t = table[table["status"] == "ok"].copy()
    by = [c for c in ("dispatch.settlement",) if c in t] + [SCALE, "strategy"]
    seasons = [c for c in t.columns if c == "time"]
    if seasons:                                   # a seed's value is its mean over the seasons
        t = t.groupby([*by, "seed"], as_index=False)[["green_local_consumption_rate", "curtailment_rate"]].mean()
        t["status"] = "ok"
    out = None
    for kpi in ("green_local_consumption_rate", "curtailment_rate"):
        s = seed_summary(t, by, kpi).rename(columns={"mean": kpi, "half_width": f"{kpi}_ci"})
        s = s[[*by, kpi, f"{kpi}_ci", "n"]]
        out = s if out is None else out.merge(s.drop(columns="n"), on=by)
    return out


def recovered(summary: pd.DataFrame) -> pd.DataFrame:
    """Each strategy's share of the baseline's wasted green power it uses locally. [-]"""
    keys = [c for c in summary.columns if c in ("dispatch.settlement", SCALE)]
    base = summary[summary["strategy"] == BASELINE].set_index(keys)["green_local_consumption_rate"]
    s = summary.join(base.rename("baseline"), on=keys)
    s["recovered_frac"] = (s["green_local_consumption_rate"] - s["baseline"]) / (1.0 - s["baseline"])
    return s


def onset(summary: pd.DataFrame, waste: float) -> dict:
    """Per settlement, the lowest penetration at which the baseline wastes more than *waste*."""
    base = summary[summary["strategy"] == BASELINE]
    groups = base.groupby("dispatch.settlement") if "dispatch.settlement" in base else [("-", base)]
    return {k: g.loc[1.0 - g["green_local_consumption_rate"] > waste, SCALE].min() for k, g in groups}


SEASONS = {12: "winter", 1: "winter", 2: "winter", 3: "spring", 4: "spring", 5: "spring",
           6: "summer", 7: "summer", 8: "summer", 9: "autumn", 10: "autumn", 11: "autumn"}


def with_season(table: pd.DataFrame) -> pd.DataFrame:
    """The table with a ``season`` column named after each run's start (when the study varies the time)."""
    if "time" not in table:
        return table
    start = pd.to_datetime(table["time"].astype(str).str.extract(r"start=([^,]+)")[0])
    return table.assign(season=start.dt.month.map(SEASONS) + start.dt.strftime(" (from %d %b)"))


def onset_by_season(table: pd.DataFrame, waste: float) -> dict:
    """Per season and settlement, the lowest penetration at which the baseline wastes more than *waste*."""
    t = with_season(table)
    if "season" not in t:
        return {}
    return {(season, settlement): scale for season, g in t.groupby("season", sort=False)
            for settlement, scale in onset(by_penetration(g.drop(columns="time")), waste).items()}


def study_page(table: pd.DataFrame) -> str:
    """Local green use, curtailment and CO2 against penetration, a panel per
    settlement and season, with each strategy's difference from the baseline."""
    from vpp.dashboards import facet_report

    t = with_season(table)
    return facet_report(
        t, SCALE, ["green_local_consumption_rate", "curtailment_rate", "co2_kg"],
        rows="dispatch.settlement" if "dispatch.settlement" in t else None,
        cols="season" if "season" in t else None, title="The green-power hosting study",
        intro="PV and wind scaled together against the feeder's; each point the mean over seeds of a week, "
              "with its 95 % interval; each difference paired with the baseline run on the same draws.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec", nargs="?", default=str(Path(__file__).with_name("hosting_study.toml")))
    ap.add_argument("--out", help="sweep folder (default: sweeps/<spec>)")
    ap.add_argument("--scheduler", help="a running Dask scheduler's address")
    ap.add_argument("--workers", type=int, help="local worker processes (default: one per core)")
    ap.add_argument("--waste", type=float, default=0.05, help="baseline waste that marks the onset (default 0.05)")
    args = ap.parse_args()
    res = vpp.sweep(args.spec, args.out, scheduler=args.scheduler, workers=args.workers, progress=True)
    print(f"{len(res.table)} runs ({res.computed} now, {res.skipped} done before, {len(res.failed)} failed) "
          f"in {res.folder}")
    summary = recovered(by_penetration(res.table))
    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.float_format", "{:.4f}".format):
        print(summary.to_string(index=False))
    for settlement, scale in onset(summary, args.waste).items():
        print(f"settlement {settlement}: the baseline wastes more than {args.waste:.0%} of the green power "
              f"from {scale}x the feeder's PV and wind" if pd.notna(scale) else
              f"settlement {settlement}: the baseline never wastes more than {args.waste:.0%}")
    for (season, settlement), scale in onset_by_season(res.table, args.waste).items():
        print(f"  {season}, settlement {settlement}: from {scale}x" if pd.notna(scale) else
              f"  {season}, settlement {settlement}: never up to the largest penetration")
    page = res.folder / "hosting_study.html"
    page.write_text(study_page(res.table), encoding="utf-8")
    print(f"wrote {page}")


if __name__ == "__main__":      # Dask spawns worker processes: the guard keeps them from re-running the sweep
    main()
