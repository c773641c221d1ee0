"""Reference output of windpowerlib's density-corrected power curve, for tests/test_wind.py.

windpowerlib (https://github.com/wind-python/windpowerlib, MIT) moves a power curve to the
site's air density with an exponent rising from 1/3 to 2/3 between 7.5 and 12.5 m/s
(Svenningsen 2010).  This script evaluates
``windpowerlib.power_output.power_curve_density_correction`` on the NREL 5 MW curve that
ships with vpp, for a grid of hub-height speeds and densities, and writes
``windpowerlib_density_correction.csv`` (wind_speed_m_s, density_kg_m3, power_kw).

Made with windpowerlib 0.2.2:
    pip install windpowerlib==0.2.2
    python tests/data/make_windpowerlib_reference.py
windpowerlib is not a dependency of vpp; only this file's output is used by the tests.
"""

from pathlib import Path

import numpy as np
import pandas as pd
from windpowerlib.power_output import power_curve_density_correction

from vpp.assets.wind import power_curve

OUT = Path(__file__).with_name("windpowerlib_density_correction.csv")


def main() -> None:
    curve_v, curve_p = power_curve("nrel_5mw_offshore")
    speeds = np.round(np.arange(0.0, 27.01, 0.25), 2)
    rows = []
    for rho in (1.0, 1.1, 1.15, 1.225, 1.3):
        p = power_curve_density_correction(speeds, curve_v, curve_p, np.full(speeds.size, rho))
        rows += [(v, rho, float(x)) for v, x in zip(speeds, p, strict=True)]
    pd.DataFrame(rows, columns=["wind_speed_m_s", "density_kg_m3", "power_kw"]).to_csv(OUT, index=False)


if __name__ == "__main__":
    main()
