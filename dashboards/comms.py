"""What the dispatcher sent against what the assets did, over a ``[comms]`` network.

One panel per fleet whose setpoints crossed the network: the sum of the
setpoints the dispatcher sent for each step (what the VPP believed it had
commanded), of the VPP's setpoints in force at the assets after the network
(fresh or held; rows on their baseline are left out, as they follow no
setpoint of the VPP), and of the controllable power the assets delivered for
the rows sent a setpoint (what happened, baseline rows included).  Below
them, the share of the fleet's setpoint rows that held an old setpoint
(their message late or lost) or ran their baseline after a silence longer
than the timeout.  All are setpoint quantities: a building's is its HVAC
request and HVAC power, not its metered power (which the other figures show).
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vpp.dashboards._style import _BASELINE_COLOR, _OKABE_ITO, _empty_figure, _layout, _rgba, _tz_label, power_unit
from vpp.results import Results

__all__ = ["comms_figure"]

MAX_FLEETS = 6          # panels drawn; the rest are named in the title


def comms_figure(results: Results) -> go.Figure:
    """Setpoints sent against power realised, per fleet behind ``[comms]``.

    Returns
    -------
    plotly.graph_objects.Figure
        Per fleet a power panel (traces ``"<fleet> sent"``, dashed,
        ``"<fleet> in force"`` and ``"<fleet> delivered"``; generator sign) and a share panel (``"<fleet>
        held"`` and ``"<fleet> baseline"`` in %). [kW or MW; %]  An empty figure
        with a note for a run without ``[comms]`` or where nothing was sent.
    """
    steps = results.tables.get("comms_steps")
    if steps is None or steps.empty:
        return _empty_figure("Setpoints over the network", "No setpoints crossed a [comms] network in this run.")
    unit = power_unit(results)
    fleets = list(dict.fromkeys(steps["fleet"]))
    shown, hidden = fleets[:MAX_FLEETS], fleets[MAX_FLEETS:]
    titles = [t for name in shown for t in (f"{name}: setpoints sent, in force and delivered [{unit.power}]",
                                            f"{name}: setpoint rows holding or on their baseline [%]")]
    fig = make_subplots(rows=2 * len(shown), cols=1, shared_xaxes=True, vertical_spacing=0.3 / (2 * len(shown)),
                        subplot_titles=titles, row_heights=[0.65, 0.35] * len(shown))
    for i, name in enumerate(shown):
        s = steps[steps["fleet"] == name]
        x = pd.DatetimeIndex(s["time"])
        line = dict(shape="hv", width=1.6)
        fig.add_trace(go.Scatter(x=x, y=s["planned_kw"].to_numpy(dtype=float) * unit.factor, name=f"{name} sent",
                                 mode="lines", line=dict(color=_BASELINE_COLOR, dash="dash", **line)),
                      row=2 * i + 1, col=1)
        fig.add_trace(go.Scatter(x=x, y=s["applied_kw"].to_numpy(dtype=float) * unit.factor,
                                 name=f"{name} in force", mode="lines",
                                 line=dict(color=_OKABE_ITO["blue"], **line)), row=2 * i + 1, col=1)
        if "delivered_kw" in s:                                  # results saved before it was recorded lack it
            fig.add_trace(go.Scatter(x=x, y=s["delivered_kw"].to_numpy(dtype=float) * unit.factor,
                                     name=f"{name} delivered", mode="lines",
                                     line=dict(color=_OKABE_ITO["bluish_green"], **line)), row=2 * i + 1, col=1)
        for column, label, colour in (("held_frac", "held", _OKABE_ITO["orange"]),
                                      ("fallback_frac", "baseline", _OKABE_ITO["vermillion"])):
            fig.add_trace(go.Scatter(x=x, y=100 * s[column].to_numpy(dtype=float), name=f"{name} {label}",
                                     mode="lines", stackgroup=f"shares-{i}", line=dict(width=0.5, color=colour,
                                                                                       shape="hv"),
                                     fillcolor=_rgba(colour, 0.45)), row=2 * i + 2, col=1)
        fig.update_yaxes(range=[0, 100], row=2 * i + 2, col=1)
    fig.update_xaxes(title_text=_tz_label(results.index), row=2 * len(shown), col=1)
    t = results.tables.get("comms")
    lost = f"{int(t['messages_lost'].sum()):,} of {int(t['messages_sent'].sum()):,} messages lost" \
        if t is not None and len(t) else ""
    more = f"; not drawn: {', '.join(hidden)}" if hidden else ""
    return _layout(fig, f"Setpoints over the network: what the VPP sent, what was in force and what the assets "
                        f"delivered ({lost}{more})",
                   260 * len(shown) + 140)
