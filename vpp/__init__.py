"""vpp: a virtual power plant aggregation simulator.

>>> import vpp
>>> res = vpp.run()                      # the embedded Shanghai Lingang week
>>> res.kpis.loc["green_local_consumption_rate", ["value", "baseline"]]
>>> cmp = vpp.compare()                  # baseline vs source-load interaction
>>> sw = vpp.sweep("study.toml")         # a parameter sweep on Dask (see vpp.sweepspec)

The API is imported on first use, so ``import vpp.flex`` (say) stays light.
"""

from importlib import import_module

__all__ = ["run", "compare", "clear_cache", "sweep", "validate", "load", "default_scenario_path", "Results",
           "Comparison", "SweepResult", "InputError", "ScenarioError", "estimate_run_time"]

_HOME = {"run": "vpp.api", "compare": "vpp.api", "clear_cache": "vpp.api", "validate": "vpp.api", "load": "vpp.api",
         "sweep": "vpp.sweeps", "SweepResult": "vpp.sweeps", "estimate_run_time": "vpp.estimate",
         "default_scenario_path": "vpp.api", "Comparison": "vpp.api", "Results": "vpp.results",
         "InputError": "vpp.errors", "ScenarioError": "vpp.errors"}


def __getattr__(name: str):
    if name in _HOME:
        return getattr(import_module(_HOME[name]), name)
    raise AttributeError(f"module 'vpp' has no attribute {name!r}")
