"""Building thermal physics: a second-order (3R2C) network and chiller/heat-pump COP.

Network (after the ISO 13790 simple hourly method, reduced to two capacities;
see also Bacher & Madsen, Energy and Buildings 43(7), 2011,
doi:10.1016/j.enbuild.2011.02.005, for grey-box RC building models):

.. math::

    C_a \\dot T_a &= g_{ao}(T_o - T_a) + g_{am}(T_m - T_a) + Q_a + h P \\\\
    C_m \\dot T_m &= g_{am}(T_a - T_m) + g_{mo}(T_o - T_m) + Q_m

with indoor air (and furniture) ``T_a``, building mass ``T_m``, outdoor air
``T_o``; conductances [kW/K] air-outdoor (windows, ventilation), air-mass
(internal surfaces) and mass-outdoor (opaque envelope); convective and
radiative gains ``Q_a``, ``Q_m`` [kW]; HVAC electric power ``P`` [kW] acting
on the air with ``h = -COP`` (cooling) or ``+COP`` (heating).  In matrix form
``x' = A x + B u`` with ``x = (T_a, T_m)``, ``u = (T_o, Q_a, Q_m)``; inputs held
over a step give the exact (zero-order hold) discretisation
``x_{k+1} = Phi x_k + Psi B u_k``, ``Phi = exp(A dt)``,
``Psi = A^{-1} (Phi - I)``.

COP: a fixed fraction of the Carnot COP between the evaporator and the
condenser, calibrated to the design COP at the design outdoor temperature
(second-law efficiency model; e.g. Staffell, Brett, Brandon & Hawkes,
Energy Environ. Sci. 5, 2012, doi:10.1039/C2EE22653G, for how heat-pump COP
falls with the temperature lift).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import expm

__all__ = ["RC2", "cop_cooling", "cop_heating", "KELVIN"]

KELVIN = 273.15


@dataclass(frozen=True)
class RC2:
    """A population of 3R2C networks (arrays of length N).

    Parameters
    ----------
    g_ao_kw_per_k, g_am_kw_per_k, g_mo_kw_per_k : ndarray
        Conductances air-outdoor, air-mass, mass-outdoor. [kW/K]
    c_air_kwh_per_k, c_mass_kwh_per_k : ndarray
        Heat capacities of air (with furniture) and mass. [kWh/K]
    """

    g_ao_kw_per_k: np.ndarray
    g_am_kw_per_k: np.ndarray
    g_mo_kw_per_k: np.ndarray
    c_air_kwh_per_k: np.ndarray
    c_mass_kwh_per_k: np.ndarray

    def continuous(self) -> tuple[np.ndarray, np.ndarray]:
        """``A`` (N, 2, 2) [1/h] and ``B`` (N, 2, 3) for inputs ``(T_o, Q_a, Q_m)``."""
        ca, cm = self.c_air_kwh_per_k, self.c_mass_kwh_per_k
        gao, gam, gmo = self.g_ao_kw_per_k, self.g_am_kw_per_k, self.g_mo_kw_per_k
        n = len(ca)
        a = np.empty((n, 2, 2))
        a[:, 0, 0], a[:, 0, 1] = -(gao + gam) / ca, gam / ca
        a[:, 1, 0], a[:, 1, 1] = gam / cm, -(gam + gmo) / cm
        b = np.zeros((n, 2, 3))
        b[:, 0, 0], b[:, 0, 1] = gao / ca, 1.0 / ca
        b[:, 1, 0], b[:, 1, 2] = gmo / cm, 1.0 / cm
        return a, b

    def discrete(self, dt_h: float) -> tuple[np.ndarray, np.ndarray]:
        """``Phi`` (N, 2, 2) and ``Gamma = Psi B`` (N, 2, 3) for a step of *dt_h* [h]."""
        a, b = self.continuous()
        phi = expm(a * dt_h)
        psi = np.linalg.solve(a, phi - np.eye(2))
        return phi, psi @ b

    @property
    def ua_total_kw_per_k(self) -> np.ndarray:
        """Steady-state conductance to outdoor: ``g_ao + g_am g_mo / (g_am + g_mo)``. [kW/K]"""
        gam, gmo = self.g_am_kw_per_k, self.g_mo_kw_per_k
        return self.g_ao_kw_per_k + gam * gmo / (gam + gmo)


def cop_cooling(temp_out_c, cop_design, temp_design_c=35.0, temp_evap_c=5.0, approach_k=8.0, cop_max=9.0):
    """Chiller COP at outdoor temperature *temp_out_c* [degC], equal to *cop_design* at *temp_design_c*.

    ``COP = eta * T_evap / (T_cond - T_evap)`` with ``T_cond = T_out + approach`` [K],
    capped at *cop_max*; ``eta`` (the share of the Carnot COP) is set by the design point.
    """
    t_evap = temp_evap_c + KELVIN
    lift_design = temp_design_c + approach_k + KELVIN - t_evap
    eta = np.asarray(cop_design) * lift_design / t_evap
    lift = np.maximum(np.asarray(temp_out_c) + approach_k + KELVIN - t_evap, 1.0)
    return np.minimum(eta * t_evap / lift, cop_max)


def cop_heating(temp_out_c, cop_design, temp_design_c=7.0, temp_supply_c=45.0, approach_k=5.0, cop_max=7.0):
    """Air-source heat-pump COP at *temp_out_c* [degC], equal to *cop_design* at *temp_design_c*.

    ``COP = eta * T_cond / (T_cond - T_evap)`` with ``T_cond`` the supply temperature
    and ``T_evap = T_out - approach`` [K], capped at *cop_max*.
    """
    t_cond = temp_supply_c + KELVIN
    lift_design = t_cond - (temp_design_c - approach_k + KELVIN)
    eta = np.asarray(cop_design) * lift_design / t_cond
    lift = np.maximum(t_cond - (np.asarray(temp_out_c) - approach_k + KELVIN), 1.0)
    return np.minimum(eta * t_cond / lift, cop_max)
