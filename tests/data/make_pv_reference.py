"""Make the pvlib ModelChain reference for the PV fleet (tests/test_pv.py).

Writes, next to this script:

* ``pv_modelchain_systems.csv``: the reference systems (one row each), with
  every PVWatts loss item as a fraction (``<item>_loss_frac``);
* ``pv_modelchain_reference.csv``: one clear-sky July day in Shanghai
  (Lingang, 30.90 N 121.93 E, 4 m) at 15-minute steps, weather and solar
  position evaluated at the interval midpoints, with every system's AC power
  from ``pvlib.modelchain.ModelChain``.

The ModelChain is configured with the physical choices of ``vpp.assets.pv``:
PVWatts DC and AC (inverter clipping at ``pdc0 / dc_ac_ratio``), PVWatts
losses, Hay-Davies transposition, physical (De Soto) incidence-angle
modifier, no spectral loss, SAPM cell temperature.  The inputs the fleet
needs (ModelChain's own solar position, the extraterrestrial irradiance it
uses, the weather) are written beside the outputs, so the test feeds the
fleet exactly what ModelChain saw.

Run from the repository root:  python tests/data/make_pv_reference.py
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pandas as pd
import pvlib
from pvlib.location import Location
from pvlib.modelchain import ModelChain
from pvlib.pvsystem import PVSystem
from pvlib.temperature import TEMPERATURE_MODEL_PARAMETERS

HERE = Path(__file__).parent
LAT, LON, ALT, TZ = 30.90, 121.93, 4.0, "Asia/Shanghai"
DAY = "2024-07-15"
STEP_MIN = 15

_PVWATTS_DEFAULTS = {
    k: v.default for k, v in inspect.signature(pvlib.pvsystem.pvwatts_losses).parameters.items()
}

_NO_LOSS = dict(
    soiling=0,
    shading=0,
    snow=0,
    mismatch=0,
    wiring=0,
    connections=0,
    lid=0,
    nameplate_rating=0,
    age=0,
    availability=0,
)

# id, p_dc_kwp, tilt, azimuth, gamma, dc_ac, eta_nom, albedo, sapm mounting, pvwatts losses [%]
SYSTEMS = [
    # commercial rooftop, south, PVWatts' default loss breakdown (14.08 %)
    ("roof_south", 500.0, 20.0, 180.0, -0.0037, 1.2, 0.96, 0.20, "open_rack_glass_polymer", {}),
    # steep south-east array with a large DC/AC ratio: clips at midday
    (
        "se_clipping",
        50.0,
        35.0,
        135.0,
        -0.0040,
        1.6,
        0.96,
        0.20,
        "close_mount_glass_glass",
        dict(_NO_LOSS, soiling=10.0),
    ),
    # shallow west-south-west residential system, bright roof
    (
        "wsw_small",
        5.0,
        10.0,
        250.0,
        -0.0035,
        1.1,
        0.97,
        0.30,
        "insulated_back_glass_polymer",
        dict(_NO_LOSS, wiring=2.0, soiling=4.0),
    ),
    # west-facing facade: sun behind the plane all morning
    (
        "facade_west",
        20.0,
        90.0,
        270.0,
        -0.0045,
        1.0,
        0.95,
        0.25,
        "open_rack_glass_glass",
        dict(_NO_LOSS, shading=5.0),
    ),
]


def _weather(midpoints: pd.DatetimeIndex, location: Location) -> pd.DataFrame:
    clear = location.get_clearsky(midpoints, model="ineichen")
    hour = (midpoints.hour + midpoints.minute / 60).to_numpy()
    return pd.DataFrame(
        {
            "ghi": clear["ghi"],
            "dni": clear["dni"],
            "dhi": clear["dhi"],
            # hot July day: 26.5 degC before dawn, 33.5 degC at 14:30
            "temp_air": 30.0 + 3.5 * np.cos(2 * np.pi * (hour - 14.5) / 24),
            # sea breeze: 1.5 m/s at night to 4.5 m/s mid-afternoon (at 10 m)
            "wind_speed": 3.0 + 1.5 * np.cos(2 * np.pi * (hour - 15.0) / 24),
            "pressure": 100_600.0,
        },
        index=midpoints,
    )


def main() -> None:
    location = Location(LAT, LON, tz=TZ, altitude=ALT)
    starts = pd.date_range(DAY, periods=24 * 60 // STEP_MIN, freq=f"{STEP_MIN}min", tz=TZ)
    midpoints = starts + pd.Timedelta(minutes=STEP_MIN / 2)
    weather = _weather(midpoints, location)

    out = pd.DataFrame(index=pd.Index(starts.strftime("%Y-%m-%dT%H:%M:%S%z"), name="time_start"))
    rows = []
    solpos = None
    for sid, p_dc_kwp, tilt, az, gamma, dc_ac, eta, albedo, mounting, losses in SYSTEMS:
        pdc0_w = p_dc_kwp * 1000.0
        system = PVSystem(
            surface_tilt=tilt,
            surface_azimuth=az,
            albedo=albedo,
            module_parameters={"pdc0": pdc0_w, "gamma_pdc": gamma},
            temperature_model_parameters=TEMPERATURE_MODEL_PARAMETERS["sapm"][mounting],
            # pvlib's inverter pdc0 is the DC input limit: P_ac0 = eta_nom * pdc0
            inverter_parameters={"pdc0": pdc0_w / dc_ac / eta, "eta_inv_nom": eta},
            losses_parameters=losses,
        )
        mc = ModelChain(
            system,
            location,
            transposition_model="haydavies",
            dc_model="pvwatts",
            ac_model="pvwatts",
            aoi_model="physical",
            spectral_model="no_loss",
            temperature_model="sapm",
            losses_model="pvwatts",
        )
        mc.run_model(weather)
        out[f"p_ac_kw_{sid}"] = mc.results.ac.to_numpy() / 1000.0
        solpos = mc.results.solar_position
        # every PVWatts loss item (pvlib's defaults where the system gives none), as fractions
        items = {**_PVWATTS_DEFAULTS, **losses}
        rows.append(
            dict(
                system=sid,
                p_dc_kwp=p_dc_kwp,
                tilt_deg=tilt,
                azimuth_deg=az,
                gamma_pdc_per_k=gamma,
                dc_ac_ratio=dc_ac,
                inverter_eta_nom=eta,
                albedo=albedo,
                temperature_model=mounting,
                **{f"{k}_loss_frac": v / 100.0 for k, v in items.items()},
            )
        )

    inputs = pd.DataFrame(
        {
            "solar_zenith_deg": solpos["zenith"].to_numpy(),
            "solar_apparent_zenith_deg": solpos["apparent_zenith"].to_numpy(),
            "solar_azimuth_deg": solpos["azimuth"].to_numpy(),
            # what PVSystem.get_irradiance computes when given no dni_extra
            "dni_extra_w_m2": pvlib.irradiance.get_extra_radiation(midpoints).to_numpy(),
            "ghi_w_m2": weather["ghi"].to_numpy(),
            "dni_w_m2": weather["dni"].to_numpy(),
            "dhi_w_m2": weather["dhi"].to_numpy(),
            "temp_air_c": weather["temp_air"].to_numpy(),
            "wind_speed_10m_m_s": weather["wind_speed"].to_numpy(),
            "pressure_pa": weather["pressure"].to_numpy(),
        },
        index=out.index,
    )
    header = (
        f"# pvlib {pvlib.__version__} ModelChain reference for vpp.assets.pv; made by "
        "tests/data/make_pv_reference.py\n"
        f"# site {LAT} N {LON} E {ALT} m, {DAY} ({TZ}), {STEP_MIN}-min steps, weather and solar "
        "position at interval midpoints, Ineichen clear sky\n"
        "# ModelChain: pvwatts dc/ac/losses, haydavies, physical aoi, no spectral loss, sapm "
        "temperature; systems in pv_modelchain_systems.csv\n"
    )
    path = HERE / "pv_modelchain_reference.csv"
    with open(path, "w", newline="") as f:
        f.write(header)
        pd.concat([inputs, out], axis=1).to_csv(f, float_format="%.10g", lineterminator="\n")
    systems = HERE / "pv_modelchain_systems.csv"
    with open(systems, "w", newline="") as f:
        f.write(header)
        pd.DataFrame(rows).to_csv(f, index=False, float_format="%.10g", lineterminator="\n")
    print(f"wrote {path} and {systems}")


if __name__ == "__main__":
    main()
