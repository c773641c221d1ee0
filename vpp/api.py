"""The Python API that notebooks and the CLI share: validate, run, compare.

>>> import vpp
>>> res = vpp.run("scenarios/shanghai_lingang.toml", strategy="source_load_interaction")
>>> res.kpis.loc["green_local_consumption_rate"]
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import hashlib
import re
import sys
from collections import OrderedDict
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import tomli_w
from pydantic import ValidationError

from vpp.assets import FLEET_TYPES, FleetContext
from vpp.assets.base import FleetParams
from vpp.drcalls import DRCalls, settle_calls
from vpp.engine import Engine
from vpp.errors import FieldError, ScenarioError, field_path
from vpp.exogenous import Exogenous, Forecaster, build_exogenous
from vpp.kpi import compute_kpis, net_import_kw, relative_kpis, service_series, vpp_series
from vpp.optimizer import STRATEGIES, Strategy
from vpp.optimizer.base import StrategyOptions
from vpp.progresslog import LogLines, on_terminal
from vpp.results import Results
from vpp.rng import component_rng
from vpp.scenario import (
    CommsConfig,
    DRConfig,
    OutputConfig,
    Scenario,
    attribute_error,
    load_scenario,
    read_scenario_dict,
    validation_error,
)
from vpp.sizing import check_memory
from vpp.summary import comparison_html, comparison_repr
from vpp.trading import Trading

__all__ = ["default_scenario_path", "load", "validate", "run", "compare", "clear_cache", "Comparison", "BASELINE",
           "resolved_scenario", "check_strategy"]

BASELINE = "source_follows_load"


def default_scenario_path() -> Path:
    """The embedded default scenario (ships inside the installed package)."""
    return Path(str(resources.files("vpp.scenarios") / "shanghai_lingang.toml"))


def load(scenario: str | Path | Scenario | None = None) -> Scenario:
    """A validated :class:`Scenario` from a path (default: the embedded one)."""
    if isinstance(scenario, Scenario):
        return scenario
    return load_scenario(default_scenario_path() if scenario is None else Path(scenario))


@dataclass(frozen=True)
class _Prepared:
    scenario: Scenario
    source: str
    fleet_params: tuple[FleetParams, ...]


def _source(scenario: Scenario, given) -> str:
    """What error messages name: the file given, else the file the scenario was read from."""
    if isinstance(given, (str, Path)):
        return str(given)
    return scenario.source if scenario.source != "<scenario>" else f"<scenario {scenario.name}>"


def _located(error: ScenarioError, source: str) -> ScenarioError:
    """*error* addressed to the file of the scenario's ``extends`` chain that sets the field."""
    path = Path(source)
    if not path.is_file():
        return error
    try:
        return attribute_error(error, path, read_scenario_dict(path))
    except ScenarioError:
        return error


def _check_outages(scenario: Scenario, source: str) -> None:
    """Refuse ``[outages.NAME]`` for a fleet whose type has no outage model (wind has its own)."""
    types = {f.name: f.type for f in scenario.fleets}
    modelled = sorted(t for t, cls in FLEET_TYPES.items() if t != "wind" and cls.has_outage_model())
    for name in scenario.outages:
        kind = types[name]
        if kind == "wind":
            raise ScenarioError(source, f"outages.{name}", "wind fleets draw their own turbine outages: set "
                                "availability_frac and outage_mttr_h in the fleet's params")
        cls = FLEET_TYPES[kind]
        if not cls.has_outage_model():
            raise ScenarioError(source, f"outages.{name}", f"fleet type {kind!r} has no outage model yet "
                                f"({', '.join(modelled)} have)")


def _prepare(scenario: Scenario, source: str) -> _Prepared:
    params = []
    for i, f in enumerate(scenario.fleets):
        cls = FLEET_TYPES.get(f.type)
        if cls is None:
            raise ScenarioError(source, f"fleets[{i}].type",
                                f"unknown fleet type {f.type!r} (known: {', '.join(sorted(FLEET_TYPES))})")
        try:
            params.append(cls.Params.model_validate(f.params, context={"base_dir": scenario.base_dir}))
        except ValidationError as e:
            raise _located(validation_error(source, e, prefix=("fleets", i, "params")), source) from None
    check_memory(scenario, [FLEET_TYPES[f.type].Params for f in scenario.fleets], source)   # before allocating
    _check_outages(scenario, source)
    return _Prepared(scenario, source, tuple(params))


def _strategy(prep: _Prepared, strategy: str | Strategy | None, field: str = "--strategy") -> Strategy:
    if isinstance(strategy, Strategy):
        return strategy
    cfg = prep.scenario.strategy
    name = strategy or cfg.name
    cls = STRATEGIES.get(name)
    if cls is None:
        field = "strategy.name" if strategy is None else field
        raise ScenarioError(prep.source, field, f"unknown strategy {name!r} (known: {', '.join(sorted(STRATEGIES))})")
    raw = cfg.options if name == cfg.name else {}
    try:
        options: StrategyOptions = cls.Options.model_validate(raw)
    except ValidationError as e:
        raise validation_error(prep.source, e, prefix=("strategy", "options")) from None
    return cls(options)


def validate(scenario: str | Path | Scenario | None = None, strategy: str | None = None) -> Scenario:
    """Check a scenario completely without running it; raise :class:`ScenarioError`.

    Builds everything :func:`run` builds before its first step -- the fleet
    parameters, the strategy and its options, the exogenous series and data
    files, the fleets themselves (their draws, session files, weather lookups)
    and the engine -- so whatever ``run`` would refuse, ``validate`` refuses
    with the same one-line message.  *strategy* as for :func:`run`.
    """
    sc = load(scenario)
    prep = _prepare(sc, _source(sc, scenario))
    _, strat, p = _variant(prep, strategy, field="--strategy")
    _strategy(prep, BASELINE)                   # run also builds the baseline, with the scenario's options
    _engine(p, strat, build_exogenous(sc), None)
    return sc


def resolved_toml(prep: _Prepared) -> str:
    """The scenario with every default filled in, as TOML."""
    data = prep.scenario.model_dump(mode="json", exclude_none=True)
    for f, params in zip(data["fleets"], prep.fleet_params, strict=True):
        f["params"] = params.model_dump(mode="json", exclude_none=True)
    start, end = prep.scenario.time.start_ts, prep.scenario.time.end_ts
    data["time"]["start"], data["time"]["end"] = start.to_pydatetime(), end.to_pydatetime()
    return "# Resolved scenario: every default filled in.\n" + tomli_w.dumps(_toml_safe(data))


def resolved_scenario(scenario: Scenario) -> str:
    """*scenario* with every default filled in, as TOML (what a sweep names its runs by);
    :class:`ScenarioError` if a fleet's parameters are refused."""
    return resolved_toml(_prepare(scenario, _source(scenario, scenario)))


def check_strategy(scenario: Scenario, name: str, field: str = "--strategy") -> None:
    """Refuse, as :func:`run` would, a strategy *name* (``NAME:perfect`` too) or its options."""
    _variant(_prepare(scenario, _source(scenario, scenario)), name, field=field)


def _toml_safe(x):
    if isinstance(x, dict):
        return {k: _toml_safe(v) for k, v in x.items() if v is not None}
    if isinstance(x, (list, tuple)):
        return [_toml_safe(v) for v in x]
    if isinstance(x, str) and x in ("inf", "-inf", "Infinity", "-Infinity"):
        return float(x.replace("Infinity", "inf"))
    return x


def _fleets(prep: _Prepared, exo: Exogenous) -> list:
    """The scenario's fleets; a :class:`~vpp.errors.FieldError` a fleet raises on
    creation (a parameter that does not fit the rest of the scenario, such as an
    unknown wind regime) becomes a :class:`ScenarioError` at that fleet's parameter."""
    sc = prep.scenario
    timeline = sc.timeline()
    fleets = []
    for i, (f, params) in enumerate(zip(sc.fleets, prep.fleet_params, strict=True)):
        ctx = FleetContext(f.name, f.node, f.count, component_rng(sc.seed, f"fleet/{f.name}"), timeline, exo)
        try:
            fleets.append(FLEET_TYPES[f.type](ctx, params))
        except FieldError as e:
            raise ScenarioError(prep.source, field_path(("fleets", i, "params") + e.loc), str(e)) from None
    _check_breakers(prep, fleets)
    return fleets


def _check_breakers(prep: _Prepared, fleets: list) -> None:
    """A hard node limit must be able to cut every load at its node."""
    for i, node in enumerate(prep.scenario.nodes):
        if node.limits != "hard" or not np.isfinite(node.import_limit_kw):
            continue
        for f in fleets:
            if f.node == node.name and f.role == "load" and not f.sheddable():
                raise ScenarioError(prep.source, field_path(("nodes", i, "limits")),
                                    f"fleet {f.name!r} ({f.type_name}) cannot be shed by a hard limit; "
                                    "set limits = \"soft\" for this node")


def _engine(prep: _Prepared, strategy: Strategy, exo: Exogenous, progress,
            history: pd.Series | None = None) -> Engine:
    """Everything a run builds before its first step: fleets, forecaster, engine."""
    sc = prep.scenario
    trading = Trading(sc, exo) if sc.market.mode == "two_settlement" else None
    return Engine(sc, _fleets(prep, exo), strategy, exo, Forecaster(sc.forecast, sc.seed), progress,
                  _calls(prep, history, exo), trading)


def _calls(prep: _Prepared, history: pd.Series | None, exo: Exogenous) -> DRCalls:
    """The run's demand-response calls, refused in one line if a baseline lacks history."""
    try:
        calls = DRCalls(prep.scenario, history, exo)
        calls.check_history()
    except FieldError as e:
        raise ScenarioError(prep.source, field_path(e.loc), str(e)) from None
    return calls


def _simulate(prep: _Prepared, strategy: Strategy, exo: Exogenous, progress,
              history: pd.Series | None = None) -> Results:
    engine = _engine(prep, strategy, exo, progress, history)
    engine.run()
    return results_of(engine, strategy.name, prep, exo)


def results_of(engine: Engine, name: str, prep: _Prepared, exo: Exogenous) -> Results:
    """What *engine* has simulated so far as :class:`Results` named *name*, with every table
    the run made (market, outages, network, setpoints, DR bids)."""
    res = engine.recorder.results(name, resolved_toml(prep), exo.to_frame(), engine.demand_charge_cny_per_kw_month)
    if engine.trading is not None:
        res.tables["market"] = engine.trading.table(net_import_kw(res).to_numpy()).reset_index(names="time")
    if engine.outage_draws:
        res.tables["outages"] = engine.outages_table()
    if engine.links:
        res.tables["comms"] = engine.comms_table()
        res.tables["comms_steps"] = engine.comms_steps()
    setpoints = engine.setpoints_table()
    if len(setpoints):
        res.tables["setpoints"] = setpoints
    if engine.calls.bids:
        res.tables["dr_bids"] = pd.DataFrame({"event": list(engine.calls.bids),
                                              "bid_kw": list(engine.calls.bids.values())})
    return res


def _dr_history(prep: _Prepared, strategy: Strategy) -> pd.Series:
    """Metered VPP net import over ``dr.history_days`` before the run, simulated by
    *strategy* on the same scenario without its calls. [kW]"""
    sc = prep.scenario
    days = dt.timedelta(days=sc.dr.history_days)
    before = sc.model_copy(update={
        "time": sc.time.model_copy(update={"start": sc.time.start - days, "end": sc.time.start}),
        "dr": DRConfig(), "output": OutputConfig()})
    res = _simulate(_Prepared(before, prep.source, prep.fleet_params), strategy, build_exogenous(before), None)
    return net_import_kw(res)


class _Histories:
    """Each run's metered history before the run, for its calls' baselines:
    ``dr.history = "baseline"``, one simulated by the baseline strategy for every
    run; ``"strategy"``, one per strategy, simulated by a copy of it (a VPP's meter
    shows its own operation); ``"run"``, none (the run's own days)."""

    def __init__(self, prep: _Prepared, exo: Exogenous):
        self.prep, self.exo, self._cache = prep, exo, {}
        dr = prep.scenario.dr
        self.mode = "none" if (not dr.events and dr.generator is None and dr.events_csv is None) else dr.history
        if self.mode in ("baseline", "strategy"):
            _calls(prep, None, exo)                # refuse a bad call before simulating any history

    def of(self, label: str, strategy: Strategy, prep: _Prepared | None = None) -> pd.Series | None:
        if self.mode not in ("baseline", "strategy"):
            return None
        key = BASELINE if self.mode == "baseline" else label
        if key not in self._cache:
            p = self.prep if key == BASELINE else (prep or self.prep)
            runner = _strategy(self.prep, BASELINE) if key == BASELINE else copy.deepcopy(strategy)
            self._cache[key] = _dr_history(p, runner)
        return self._cache[key]


def _without_calls(prep: _Prepared) -> _Prepared:
    """The same prepared scenario without demand-response calls."""
    return _Prepared(prep.scenario.model_copy(update={"dr": DRConfig()}), prep.source, prep.fleet_params)


def _counterfactual(prep: _Prepared, hist: _Histories, label: str, strategy: Strategy, exo: Exogenous,
                    progress: bool | str) -> Results | None:
    """With ``dr.counterfactual = "strategy"`` and calls, a copy of the (still
    unused) strategy run on the same draws without the calls, which *label*'s
    calls are then measured against; else ``None`` (the baseline run)."""
    if hist.mode == "none" or label == BASELINE or prep.scenario.dr.counterfactual != "strategy":
        return None
    return _run_one(_without_calls(prep), copy.deepcopy(strategy), exo, progress)


def _per_step(r: Results) -> pd.DataFrame:
    """What a call is settled and costed on, per step (see :func:`vpp.drcalls.settle_calls`)."""
    return pd.concat([vpp_series(r)[["net_import_kw", "green_local_kw"]], service_series(r)], axis=1)


def _settle_calls(prep: _Prepared, histories: _Histories, exo: Exogenous, res: Results, base: Results,
                  counterfactual: Results | None = None) -> None:
    """Put each run's per-event table in ``tables["dr_events"]``, against *counterfactual*
    (default: the baseline run; the baseline run is always its own)."""
    if histories.mode == "none":
        return
    for r in {id(res): res, id(base): base}.values():
        cf = base if r is base or counterfactual is None else counterfactual
        calls = DRCalls(prep.scenario, histories.of(r.strategy, None), exo)
        bids = r.tables.get("dr_bids")
        bids = dict(zip(bids["event"], bids["bid_kw"], strict=True)) if bids is not None else None
        events, baselines = settle_calls(calls, _per_step(r), _per_step(cf), bids)
        if len(events):
            r.tables["dr_events"], r.tables["dr_baselines"] = events, baselines


VERBOSE_EVERY_S = 10.0    # log lines under --verbose
LOG_EVERY_S = 60.0        # log lines where stderr is not a terminal


class _Lines:
    """Log lines of simulated time (:class:`~vpp.progresslog.LogLines`), with the bar's interface."""

    def __init__(self, label: str, timeline, every_s: float):
        self.timeline = timeline
        self.log = LogLines(label, timeline.n_steps, "steps", True, every_s=every_s)

    def __call__(self, k, n):
        self.log.update(k, f"{self.timeline.time_of(min(k, n - 1)):%Y-%m-%d %H:%M}")

    def close(self):
        pass


def _progress(label: str, enabled: bool | str, timeline):
    """Progress of simulated time: a bar on a terminal, log lines where stderr is not
    one (a line a minute), or log lines every 10 s when *enabled* is ``"log"``
    (``--verbose``); nothing when *enabled* is false."""
    if not enabled:
        return None, None
    if enabled == "log" or not on_terminal(sys.stderr):
        lines = _Lines(label, timeline, VERBOSE_EVERY_S if enabled == "log" else LOG_EVERY_S)
        return lines, lines
    from tqdm.auto import tqdm

    bar = tqdm(total=timeline.n_steps, desc=label, unit="step", disable=None, leave=False,
               bar_format="{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} steps [{elapsed}<{remaining}]")

    def update(k, n):
        if k == n or k % 8 == 0:
            bar.n = k
            bar.set_description_str(f"{label} {timeline.time_of(min(k, n - 1)):%Y-%m-%d %H:%M}", refresh=False)
            bar.refresh()

    return update, bar


def _run_one(prep: _Prepared, strategy: Strategy, exo: Exogenous, progress: bool | str,
             history: pd.Series | None = None) -> Results:
    update, bar = _progress(strategy.name, progress, prep.scenario.timeline())
    try:
        return _simulate(prep, strategy, exo, update, history)
    finally:
        if bar is not None:
            bar.close()


BASELINE_CACHE_SIZE = 2     # baseline runs kept per process (a year of the city is ~1 GB of results)
_BASELINES: OrderedDict[str, Results] = OrderedDict()


def _baseline_key(prep: _Prepared, exo: Exogenous, history: pd.Series | None) -> str:
    """What makes two baseline runs the same: the resolved scenario (seed included), the
    exogenous series built from it, every file it names (path, size, time changed) and
    the DR history -- so a CSV edited in a notebook is a new run."""
    toml = resolved_toml(prep)
    h = hashlib.sha256(toml.encode())
    h.update(pd.util.hash_pandas_object(exo.to_frame(), index=True).to_numpy().tobytes())
    for name in sorted(set(re.findall(r'"([^"\n]+)"', toml))):
        f = Path(name)
        try:
            if f.is_file():
                st = f.stat()
                h.update(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
        except (OSError, ValueError):                  # not a path
            continue
    if history is not None:
        h.update(pd.util.hash_pandas_object(history, index=True).to_numpy().tobytes())
    return h.hexdigest()


def clear_cache() -> None:
    """Forget the baseline runs kept for reuse (:func:`run`, :func:`compare`): after
    changing the code of a fleet or strategy in a live session."""
    _BASELINES.clear()


def _baseline_run(prep: _Prepared, exo: Exogenous, progress: bool | str, history: pd.Series | None) -> Results:
    """The baseline strategy's run of *prep*: reused when this process already ran it on
    the same scenario and draws (:func:`_baseline_key`), else simulated and kept (the
    last :data:`BASELINE_CACHE_SIZE`).  A reused run is a shallow copy, so that a
    caller's ``kpis``, ``tables`` or ``baseline`` stay its own."""
    key = _baseline_key(prep, exo, history)
    if key in _BASELINES:
        _BASELINES.move_to_end(key)
        if progress:
            print(f"{BASELINE}: reused the run of the same scenario and draws", file=sys.stderr, flush=True)
    else:
        _BASELINES[key] = _run_one(prep, _strategy(prep, BASELINE), exo, progress, history)
        while len(_BASELINES) > BASELINE_CACHE_SIZE:
            _BASELINES.popitem(last=False)
    r = _BASELINES[key]
    return dataclasses.replace(r, tables=dict(r.tables), kpis=None, baseline=None)


def run(scenario: str | Path | Scenario | None = None, strategy: str | Strategy | None = None, *,
        progress: bool | str = False) -> Results:
    """Simulate one strategy (and the baseline, for relative KPIs).

    Parameters
    ----------
    scenario : path or Scenario, optional
        Default: the embedded ``shanghai_lingang.toml``.
    strategy : str or Strategy, optional
        A registered name or a strategy object; default: the scenario's.  A
        name ending in ``:perfect`` runs that strategy with perfect forecasts
        (as in :func:`compare`); the baseline keeps the scenario's forecasts.
    progress : bool or "log"
        Show progress of simulated time: a bar on a terminal, a log line a
        minute where stderr is not a terminal; ``"log"``: log lines every 10 s
        wherever it goes (``--verbose``).

    Returns
    -------
    Results
        With ``kpis`` (absolute and relative to ``source_follows_load`` on
        the same draws) and ``baseline`` (that run).
    """
    sc = load(scenario)
    prep = _prepare(sc, _source(sc, scenario))
    label, strat, p = _variant(prep, strategy, field="--strategy")
    exo = build_exogenous(sc)
    hist = _Histories(prep, exo)
    history = hist.of(label, strat, p)
    cf = _counterfactual(p, hist, label, strat, exo, progress)
    if label == BASELINE and _is_default_baseline(strat):
        res = _baseline_run(prep, exo, progress, history)
    else:
        res = _run_one(p, strat, exo, progress, history)
    res.strategy = label
    if label == BASELINE:
        base = res
    else:
        base = _baseline_run(prep, exo, progress, hist.of(BASELINE, _strategy(prep, BASELINE)))
    _settle_calls(prep, hist, exo, res, base, cf)
    res.kpis = relative_kpis(compute_kpis(res), compute_kpis(base))
    res.baseline = base if base is not res else None
    return res


def _is_default_baseline(strategy: Strategy) -> bool:
    """The registered baseline strategy itself (not a subclass or wrapper), options at their defaults."""
    return type(strategy) is STRATEGIES.get(BASELINE) and strategy.options == type(strategy.options)()


@dataclass
class Comparison:
    """Several strategies on one scenario and the same random draws.

    Attributes
    ----------
    table : DataFrame
        One row per strategy, one column per KPI.
    results : dict of str to Results
    """

    table: pd.DataFrame
    results: dict[str, Results] = field(default_factory=dict)

    @property
    def baseline(self) -> Results:
        return self.results[BASELINE]

    def __repr__(self) -> str:
        return comparison_repr(self)

    def _repr_html_(self) -> str:
        return comparison_html(self)


PERFECT = ":perfect"   # suffix: the same strategy with perfect forecasts (value of information)
PERFECT_NETWORK = ":perfect_network"   # suffix: the same strategy without [comms] faults (cost of faults)
CENTRAL = "source_load_interaction"


def _variant(prep: _Prepared, strategy, field: str = "--strategies") -> tuple[str, Strategy, _Prepared]:
    """(label, strategy, prepared scenario) for a name that may end in ``:perfect``
    (``run``, ``compare`` and ``validate`` all read strategy names here)."""
    if isinstance(strategy, str) and strategy.endswith(PERFECT_NETWORK):
        base = strategy[: -len(PERFECT_NETWORK)]
        sc = prep.scenario.model_copy(update={"comms": CommsConfig()})
        clean = _Prepared(sc, prep.source, prep.fleet_params)
        return strategy, _strategy(clean, base, field=field), clean
    if isinstance(strategy, str) and strategy.endswith(PERFECT):
        base = strategy[: -len(PERFECT)]
        sc = prep.scenario.model_copy(update={"forecast": prep.scenario.forecast.model_copy(update={"perfect": True})})
        perfect = _Prepared(sc, prep.source, prep.fleet_params)
        return strategy, _strategy(perfect, base, field=field), perfect
    strat = _strategy(prep, strategy, field=field)
    return strat.name, strat, prep


def compare(scenario: str | Path | Scenario | None = None,
            strategies: tuple[str | Strategy, ...] = (BASELINE, CENTRAL), *,
            progress: bool | str = False) -> Comparison:
    """Run each strategy (the baseline always included) on identical draws.

    A name ending in ``:perfect`` runs that strategy with perfect forecasts, and
    one ending in ``:perfect_network`` runs it with every setpoint arriving at
    once (the scenario without its ``[comms]`` faults).  Besides every KPI the
    table has, per strategy:

    * ``unserved_energy_kwh``: EV and industrial-batch energy not served, and
      fixed load a hard node limit cut;
    * ``optimality_gap_frac``: (cost - cost*) / |cost*| against the centralised
      optimum of the same run (``source_load_interaction``, realistic forecasts);
    * ``flexibility_captured_frac``: the share of the centralised optimum's cost
      saving over the baseline that the strategy achieves;
    * ``value_of_perfect_information_cny``: on a strategy run also as
      ``:perfect``, its cost minus the perfect-forecast run's cost;
    * ``cost_of_faults_cny``: on a strategy run also as ``:perfect_network``, its
      cost minus the cost of the same strategy on a perfect network.
    """
    sc = load(scenario)
    prep = _prepare(sc, _source(sc, scenario))
    runs = [_variant(prep, s) for s in strategies]
    if BASELINE not in [label for label, _, _ in runs]:
        runs.insert(0, _variant(prep, BASELINE))
    exo = build_exogenous(sc)
    hist = _Histories(prep, exo)
    results = {}
    counterfactuals = {}
    for label, strat, p in runs:
        history = hist.of(label, strat, p)
        counterfactuals[label] = _counterfactual(p, hist, label, strat, exo, progress)
        if label == BASELINE and _is_default_baseline(strat):
            r = _baseline_run(p, exo, progress, history)
        else:
            r = _run_one(p, strat, exo, progress, history)
        r.strategy = label
        results[label] = r
    for label, r in results.items():
        _settle_calls(prep, hist, exo, r, results[BASELINE], counterfactuals[label])
    base_kpis = compute_kpis(results[BASELINE])
    for r in results.values():
        r.kpis = relative_kpis(compute_kpis(r), base_kpis)
        r.baseline = results[BASELINE] if r.strategy != BASELINE else None
    table = pd.DataFrame({name: r.kpis["value"] for name, r in results.items()}).T
    table.index.name = "strategy"
    return Comparison(_comparison_columns(table), results)


def _comparison_columns(table: pd.DataFrame) -> pd.DataFrame:
    t = table.copy()
    cost = t["total_cost_cny"]
    t["unserved_energy_kwh"] = (t["ev_energy_not_served_kwh"] + t["process_energy_not_served_kwh"]
                                + t["load_unserved_kwh"])
    if CENTRAL in t.index:
        best, base = cost[CENTRAL], cost[BASELINE]
        t["optimality_gap_frac"] = (cost - best) / abs(best) if best else float("nan")
        t["flexibility_captured_frac"] = (base - cost) / (base - best) if base != best else float("nan")
    t["value_of_perfect_information_cny"] = [
        cost[name] - cost[name + PERFECT] if name + PERFECT in t.index else float("nan") for name in t.index]
    t["cost_of_faults_cny"] = [
        cost[name] - cost[name + PERFECT_NETWORK] if name + PERFECT_NETWORK in t.index else float("nan")
        for name in t.index]
    return t
