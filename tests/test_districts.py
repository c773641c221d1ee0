"""A scenario made of districts ([[districts]]): each district's nodes and fleets
come in under its name, the rest is the including file's; the shipped city."""

from pathlib import Path

import pytest
from conftest import ROOT, SMALL

from vpp.errors import ScenarioError
from vpp.scenario import load_scenario, read_scenario_dict

CITY = ROOT / "scenarios" / "shanghai_city.toml"


def _city(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "city.toml"
    path.write_text(f'extends = "{SMALL.as_posix()}"\nname = "two towns"\n' + body)
    return path


TWO_TOWNS = f'''
[time]
end = 2024-07-23T00:00:00
[[districts]]
name = "north"
scenario = "{SMALL.as_posix()}"
[[districts]]
name = "south"
scenario = "{SMALL.as_posix()}"
[[fleets]]
name = "south_pv"
count = 9
'''


def test_districts_bring_their_nodes_and_fleets_under_their_names(tmp_path):
    small = load_scenario(SMALL)
    sc = load_scenario(_city(tmp_path, TWO_TOWNS))
    assert [n.name for n in sc.nodes] == ["city", "coast", "north_city", "north_coast", "south_city", "south_coast"]
    by_name = {f.name: f for f in sc.fleets}
    assert len(sc.fleets) == 3 * len(small.fleets)
    for f in small.fleets:
        north = by_name[f"north_{f.name}"]
        assert north.node == f"north_{f.node}" and north.type == f.type and north.params == f.params
        assert north.count == f.count
    assert by_name["south_pv"].count == 9 and by_name["north_pv"].count == by_name["pv"].count  # resized by name
    assert str(sc.time.end).startswith("2024-07-23")          # the including file's time, not the district's


def test_a_name_that_starts_with_the_district_name_is_kept_and_a_clash_is_refused(tmp_path):
    body = f'[[districts]]\nname = "city"\nscenario = "{SMALL.as_posix()}"\n'
    with pytest.raises(ScenarioError, match=r"districts: two nodes are named 'city'"):
        read_scenario_dict(_city(tmp_path, body))
    alone = tmp_path / "alone.toml"
    alone.write_text(f'name = "alone"\n[[districts]]\nname = "city"\nscenario = "{SMALL.as_posix()}"\n')
    data = read_scenario_dict(alone)
    assert [n["name"] for n in data["nodes"]] == ["city", "city_coast"]
    assert {f["node"] for f in data["fleets"]} <= {"city", "city_coast"}


@pytest.mark.parametrize("body, field, reason", [
    ('districts = "a.toml"', "districts", "array of tables"),
    ('[[districts]]\nname = "a"', r"districts\[0\].scenario", "required"),
    ('[[districts]]\nname = "a"\nscenario = "nowhere.toml"', r"districts\[0\].scenario", "no such scenario file"),
    ('[[districts]]\nname = "a b"\nscenario = "x.toml"', r"districts\[0\].name", "letters, digits"),
    ('[[districts]]\nname = "a"\nscenario = "x.toml"\nscale = 2', r"districts\[0\].scale", "unknown field"),
    ('[[districts]]\nname = "a"\nscenario = 3', r"districts\[0\].scenario", "path to another scenario"),
])
def test_a_bad_district_entry_is_one_line_naming_its_field(tmp_path, body, field, reason):
    path = tmp_path / "c.toml"
    path.write_text(f'name = "c"\n{body}\n')
    with pytest.raises(ScenarioError, match=rf"c\.toml: {field}: .*{reason}"):
        read_scenario_dict(path)


def test_the_shipped_city_is_four_districts_of_about_100k_assets_each_on_its_own_nodes():
    sc = load_scenario(CITY)
    assert 95_000 <= sum(f.count for f in sc.fleets) <= 105_000
    districts = ("huangpu", "baoshan", "lingang", "minhang")
    assert all(f.name.split("_")[0] in districts and f.node.split("_")[0] == f.name.split("_")[0] for f in sc.fleets)
    counts = {d: sum(f.count for f in sc.fleets if f.name.startswith(d)) for d in districts}
    assert counts["minhang"] > counts["lingang"] > counts["huangpu"] > counts["baoshan"]
    types = {d: {f.type for f in sc.fleets if f.name.startswith(d)} for d in districts}
    assert "wind" in types["lingang"] and "wind" not in types["huangpu"] | types["baoshan"] | types["minhang"]
    assert "tcl" in types["minhang"] and "industry" in types["baoshan"]
    for d in ("huangpu", "baoshan", "minhang"):          # each district runs on its own too
        alone = load_scenario(ROOT / "scenarios" / f"district_{d}.toml")
        assert sum(f.count for f in alone.fleets) == counts[d]


def test_the_city_runs_and_each_district_draws_at_its_own_node():
    import vpp
    from vpp.scenario import scenario_from_dict

    d = read_scenario_dict(CITY)
    d["time"]["end"] = d["time"]["start"].replace(hour=3)          # three hours of a summer Monday
    sc = scenario_from_dict(d, str(CITY), CITY.parent)
    res = vpp.run(sc, strategy="source_follows_load")
    imports = res.nodes.xs("grid_import_kw", axis=1, level="quantity").mean()
    assert set(imports.index) == {n.name for n in sc.nodes}
    # at night the commercial core, the industry and the homes import; Lingang's city node too
    assert (imports.drop("lingang_coast") > 1_000).all()
    assert imports["baoshan"] > imports["huangpu"]        # 750 MW of industry against ~500 MW of towers
