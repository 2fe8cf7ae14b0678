from pathlib import Path

import pytest
import yaml

from eo4dm_helpers.config import ConfigError, load_config, parse_dekad, public_view

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["demo.yaml", "new_caledonia.yaml"])
def test_shipped_parameter_files_load(name):
    cfg = load_config(ROOT / "params" / name)
    assert cfg.territory.timezone == "Pacific/Noumea"
    assert cfg.global_chain.grid.width > 0
    assert cfg.paths.archive.is_absolute()


def test_relative_paths_resolve_against_the_file(tmp_path):
    cfg = load_config(ROOT / "params" / "demo.yaml")
    assert cfg.paths.archive == (ROOT / "demo" / "archive").resolve()


def _write(tmp_path, mutate):
    data = yaml.safe_load((ROOT / "params" / "demo.yaml").read_text())
    mutate(data)
    p = tmp_path / "p.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(colour="blue"), r"colour: unknown key"),
        (lambda d: d["indicators"].update(alpah=0.4), r"indicators\.alpah: unknown key"),
        (lambda d: d["indicators"].update(alpha="high"), r"indicators\.alpha: must be a number"),
        (lambda d: d["indicators"].update(alpha=1.5), r"indicators\.alpha: must be between 0 and 1"),
        (lambda d: d.update(backend="gee"), r"backend: must be one of"),
        (lambda d: d["territory"].update(timezone="Mars/Olympus"), r"territory\.timezone: unknown time zone"),
        (lambda d: d["territory"].update(bbox=[168, -19, 163, -22]), r"territory\.bbox"),
        (lambda d: d["territory"].pop("name"), r"territory\.name: missing"),
        (lambda d: d["local_chain"]["sensors"][3].update(end="1990-01-01"),
         r"local_chain\.sensors\[3\]\.end: is before start"),
        (lambda d: d["local_chain"]["sensors"][0].update(start="2017-02-30"), r"sensors\[0\]\.start: must be a date"),
        (lambda d: d["global_chain"]["grid"].update(width=0), r"global_chain\.grid\.width/height: must be positive"),
        (lambda d: d["global_chain"]["grid"].update(crs="EPSG:999999"), r"global_chain\.grid\.crs: unknown CRS"),
        (lambda d: d["indicators"]["reference"].update(mode="fixed", start_year=2020, end_year=2010),
         r"indicators\.reference\.end_year: is before start_year"),
        (lambda d: d["global_chain"].update(enabled="yes"), r"global_chain\.enabled: must be true or false"),
        (lambda d: d["local_chain"]["sensors"].append({"name": "S3", "start": "2020-01-01"}),
         r"unknown high-resolution"),
    ],
)
def test_bad_parameters_give_one_line_naming_the_key(tmp_path, mutate, message):
    p = _write(tmp_path, mutate)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(p)
    assert "\n" not in str(info.value)
    assert str(p) in str(info.value)


def test_unreadable_and_invalid_yaml(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("territory: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_dekad_parameter_errors_name_the_parameter():
    with pytest.raises(ConfigError, match=r"^--dekad: .*2026-13-D4"):
        parse_dekad("2026-13-D4", "--dekad")


def test_config_is_frozen():
    cfg = load_config(ROOT / "params" / "demo.yaml")
    with pytest.raises(AttributeError):
        cfg.backend = "earthengine"  # type: ignore[misc]


def test_public_view_hides_the_key_path(tmp_path):
    p = _write(tmp_path, lambda d: d.update(credentials={"ee_key_file": "/secret/dir/key.json"}))
    view = public_view(load_config(p))
    assert "/secret/dir" not in str(view)
    assert view["credentials"]["ee_key_file"] == "set"
