"""Forecasts of the exogenous series, as a dispatch strategy sees them.

The physics always uses the actuals; a strategy deciding at step ``k0`` sees
the window ``k0 .. k0 + n - 1`` with forecast errors.  Each error is a random
walk in lead time, so its standard deviation at lead ``L`` is
``sigma_24h * sqrt(L / 24 h)`` and zero at lead zero (the current step is
known).  This is the simplest error model with the two properties forecast
verification shows -- no error now, spread growing with lead time -- and the
one the forecast section of the scenario parametrises by its 24 h value
(assumption; for the size of day-ahead GHI forecast errors see e.g.
Lorenz, Hurka, Heinemann & Beyer 2009, Irradiance forecasting for the power
prediction of grid-connected photovoltaic systems, IEEE JSTARS 2(1), 2-10,
doi:10.1109/JSTARS.2009.2020300).

=================  ================================================================
quantity           error
=================  ================================================================
GHI                the clear-sky index times ``(1 + e)``, clipped to
                   ``0 .. max(K_CAP, actual index)``; DNI and DHI recomputed from
                   the forecast GHI with Erbs et al. (1982), as the weather does
temperature        ``+ e`` [K]
wind (per regime)  times ``(1 + e)``, clipped at zero; independent per regime
prices, carbon     none (published in advance)
load               ``load_error_frac = e``: fleets apply
                   ``forecast = actual * (1 + load_error_frac)`` to their own loads
=================  ================================================================

``perfect = true`` switches every error off: the window is the actuals, and it
is marked ``perfect`` so that each fleet forecasts its own stochastic
quantities (industrial base-load noise, wind-turbine outages; the others'
noise is already taken from the actuals) by the values its physics will
realise.  Perfect means perfect for every forecast quantity; EV arrivals are
not a forecast in this model (the optimizer never sees cars before they plug in).

Consecutive forecasts are consistent (the martingale model of forecast
evolution, Heath & Jackson 1994, IIE Transactions 26(3), 17-30,
doi:10.1080/07408179408966604): the error of the forecast issued at ``k0``
for step ``t`` is the sum of per-step innovations ``w[k0] + ... + w[t-1]``,
and every window uses the same innovation sequence.  So a forecast for a given
hour is revised step by step as it approaches, rather than redrawn at every
re-plan -- independent redraws would make a rolling-horizon strategy flip its
plan from one window to the next on noise alone.

**Feed dropouts** (``dropout_frac``): the weather forecast feed alternates
between up and down periods of exponential length (mean down
``dropout_mean_h``, mean up chosen so the long-run share down is
``dropout_frac``), drawn from ``component_rng(seed, "forecast/dropout")`` in
order from the start of the run.  A window decided while the feed is down is
*persistence*: each step's irradiance, temperature and wind as at the same time
of day on the last day before the decision (lead zero, measured on site, stays
exact), the standard fallback of a dispatcher that has lost its forecasts.  A
step whose same time of day lies before the run has no past day to copy: it
gets *smart persistence*, the clear-sky irradiance times the clear-sky index
measured now (1, a clear sky, when the sun is below 50 W/m2 of clear-sky GHI
now), and the temperature and wind measured now.
Prices, carbon and the fleets' own load forecasts are unaffected.

Randomness: innovations come in blocks of steps, block ``b`` of quantity ``q``
from ``component_rng(seed, f"forecast/{q}/{b}")`` (``q`` in ``ghi``,
``temp``, ``load``, ``wind/<regime>``), so a window's errors do not depend on
which other windows were drawn, in what order, or which other wind regimes
exist.
"""

from __future__ import annotations

import bisect
from dataclasses import replace

import numpy as np

from vpp.exogenous.config import ForecastConfig
from vpp.exogenous.series import Exogenous
from vpp.exogenous.weather import K_CAP, split_ghi
from vpp.rng import component_rng

__all__ = ["Forecaster", "random_walk"]


BLOCK_STEPS = 1024  # innovations are drawn per block of steps, keyed by block


def random_walk(innovations: np.ndarray, step_h: float, sigma_24h: float) -> np.ndarray:
    """A random walk in lead time from unit *innovations*: zero at lead 0, std
    ``sigma_24h * sqrt(L / 24 h)`` at lead L.

    Parameters
    ----------
    innovations : ndarray, shape (n - 1,)
        Standard-normal innovations of the steps from lead 0 onwards.
    step_h : float
        Step length. [h]
    sigma_24h : float
        Standard deviation at 24 h lead. [unit of the error]

    Returns
    -------
    ndarray, shape (n,)
        The error path.
    """
    steps = innovations * (sigma_24h * np.sqrt(step_h / 24.0))
    return np.concatenate([[0.0], np.cumsum(steps)])


class Forecaster:
    """Forecasts with errors that evolve consistently from one window to the next.

    Parameters
    ----------
    config : ForecastConfig
        ``perfect`` and the 24 h error standard deviations.
    seed : int
        The scenario seed.
    """

    def __init__(self, config: ForecastConfig, seed: int):
        self.config = config
        self.seed = seed
        self._starts: list[float] = []                    # feed down over [start, end) hours, in order
        self._ends: list[float] = []
        self._drawn_to_h = 0.0
        self._dropout_rng = component_rng(seed, "forecast/dropout")

    def feed_down(self, t_h: float) -> bool:
        """Whether the weather forecast feed is down at *t_h* hours after the start."""
        f = self.config.dropout_frac
        if f <= 0:
            return False
        mttr = self.config.dropout_mean_h
        mttf = mttr * (1.0 - f) / f
        while self._drawn_to_h <= t_h:
            up = self._dropout_rng.exponential(mttf)
            down = self._dropout_rng.exponential(mttr)
            start = self._drawn_to_h + up
            self._starts.append(start)
            self._ends.append(start + down)
            self._drawn_to_h = start + down
        i = bisect.bisect_right(self._starts, t_h) - 1
        return i >= 0 and t_h < self._ends[i]

    def innovations(self, quantity: str, k0: int, n: int) -> np.ndarray:
        """Unit innovations of *quantity* for absolute steps ``k0 .. k0+n-1``."""
        if n <= 0:
            return np.empty(0)
        first, last = k0 // BLOCK_STEPS, (k0 + n - 1) // BLOCK_STEPS
        blocks = [component_rng(self.seed, f"forecast/{quantity}/{b}").standard_normal(BLOCK_STEPS)
                  for b in range(first, last + 1)]
        start = k0 - first * BLOCK_STEPS
        return np.concatenate(blocks)[start:start + n]

    def _error(self, quantity: str, k0: int, n: int, step_h: float, sigma_24h: float) -> np.ndarray:
        """The error path of *quantity* over the window ``k0 .. k0+n-1`` (zero at lead zero)."""
        return random_walk(self.innovations(quantity, k0, n - 1), step_h, sigma_24h)[:n]

    def forecast(self, actual: Exogenous, k0: int, n: int) -> Exogenous:
        """The window ``actual.window(k0, n)`` with forecast errors applied.

        Parameters
        ----------
        actual : Exogenous
            Actual series on the padded timeline.
        k0 : int
            The step at which the strategy decides (lead zero).
        n : int
            Number of steps in the window.

        Returns
        -------
        Exogenous
            New arrays (the actuals are not modified); ``load_error_frac`` set
            (zeros when ``perfect``, and ``perfect`` set, so that fleets use
            their own realised values too).  Irradiance [W/m2], temperature
            [degC], wind [m/s]; prices and carbon as the actuals.
        """
        win = actual.window(k0, n)
        if self.config.perfect:
            return replace(win, load_error_frac=np.zeros(n), perfect=True)
        c, dt_h = self.config, actual.step_h
        if self.feed_down(k0 * dt_h):
            return self._persistence(actual, win, k0, n)

        def walk(quantity: str, sigma_24h: float) -> np.ndarray:
            return self._error(quantity, k0, n, dt_h, sigma_24h)

        e_ghi = walk("ghi", c.ghi_error_frac_24h)
        e_temp = walk("temp", c.temp_error_k_24h)
        e_load = walk("load", c.load_error_frac_24h)

        ghi_cap = np.maximum(K_CAP * win.ghi_clear_w_m2, win.ghi_w_m2)
        ghi = np.clip(win.ghi_w_m2 * (1.0 + e_ghi), 0.0, ghi_cap)
        dni, dhi = split_ghi(ghi, win.solar_apparent_zenith_deg, win.index, dt_h * 3600.0)
        # lead zero is known exactly (also for measured DNI/DHI that Erbs would not reproduce)
        if n:
            dni[0], dhi[0] = win.dni_w_m2[0], win.dhi_w_m2[0]

        wind = {}
        for name, v in win.wind_speed_m_s.items():
            wind[name] = np.maximum(v * (1.0 + walk(f"wind/{name}", c.wind_error_frac_24h)), 0.0)
        return replace(
            win,
            ghi_w_m2=ghi,
            dni_w_m2=dni,
            dhi_w_m2=dhi,
            temp_air_c=win.temp_air_c + e_temp,
            wind_speed_m_s=wind,
            load_error_frac=e_load,
        )

    def _persistence(self, actual: Exogenous, win: Exogenous, k0: int, n: int) -> Exogenous:
        """The window while the feed is down (see the module notes): same time on the last
        day before *k0*, smart persistence where that is before the run, lead zero exact;
        the load errors as usual."""
        per_day = max(int(round(24.0 / actual.step_h)), 1)
        lead = np.arange(n)
        back = k0 + lead - per_day * np.ceil((lead + 1) / per_day).astype(int)
        known = back >= 0
        known[0], back[0] = True, k0                                  # lead zero: measured
        src = np.where(known, back, k0)
        clear_now = actual.ghi_clear_w_m2[k0]
        index_now = actual.ghi_w_m2[k0] / clear_now if clear_now > 50.0 else 1.0
        ghi = np.where(known, actual.ghi_w_m2[src], win.ghi_clear_w_m2 * index_now)
        dni, dhi = split_ghi(ghi, win.solar_apparent_zenith_deg, win.index, actual.step_h * 3600.0)
        dni = np.where(known, actual.dni_w_m2[src], dni)
        dhi = np.where(known, actual.dhi_w_m2[src], dhi)
        e_load = self._error("load", k0, n, actual.step_h, self.config.load_error_frac_24h)
        return replace(
            win,
            ghi_w_m2=ghi, dni_w_m2=dni, dhi_w_m2=dhi,
            temp_air_c=actual.temp_air_c[src].copy(),
            wind_speed_m_s={name: v[src].copy() for name, v in actual.wind_speed_m_s.items()},
            load_error_frac=e_load,
        )
