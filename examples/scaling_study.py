"""How the optimality gap and solve time of each strategy grow with fleet size.

Scales the fleets of a scenario (default: scenarios/small_district.toml,
shortened to one day) by a list of factors, runs every strategy on the same
draws, and prints one row per (size, strategy): assets, total cost, optimality
gap to the centralised optimum, flexibility captured and strategy time.

Run: ``python examples/scaling_study.py [SCENARIO] [--factors 1,2,4,8] [--days 1]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

import vpp
from vpp.optimizer import STRATEGIES
from vpp.scenario import read_scenario_dict, scenario_from_dict

CANDIDATES = ("source_load_interaction", "virtual_battery", "price_signal", "rule_based")


def scaled(path: Path, factor: float, days: int):
    d = read_scenario_dict(path)
    start = pd.Timestamp(d["time"]["start"])
    d["time"]["end"] = (start + pd.Timedelta(days=days)).to_pydatetime()
    for f in d["fleets"]:
        f["count"] = max(1, round(f["count"] * factor))
    for n in d["nodes"]:
        n["import_limit_kw"] *= factor
        n["export_limit_kw"] *= factor
    return scenario_from_dict(d, str(path), path.parent)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario", nargs="?", default=str(Path(__file__).resolve().parents[1] / "scenarios"
                                                        / "small_district.toml"))
    ap.add_argument("--factors", default="1,2,4,8")
    ap.add_argument("--days", type=int, default=1)
    args = ap.parse_args()
    strategies = ["source_follows_load"] + [s for s in CANDIDATES if s in STRATEGIES]
    rows = []
    for factor in (float(x) for x in args.factors.split(",")):
        sc = scaled(Path(args.scenario), factor, args.days)
        cmp = vpp.compare(sc, tuple(strategies))
        assets = sum(f.count for f in sc.fleets)
        for name, row in cmp.table.iterrows():
            rows.append({"factor": factor, "assets": assets, "strategy": name,
                         "total_cost_cny": row["total_cost_cny"],
                         "optimality_gap_frac": row.get("optimality_gap_frac"),
                         "flexibility_captured_frac": row.get("flexibility_captured_frac"),
                         "green_local_consumption_rate": row["green_local_consumption_rate"],
                         "solve_time_s": row["solve_time_s"]})
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:,.4g}"))


if __name__ == "__main__":
    main()
