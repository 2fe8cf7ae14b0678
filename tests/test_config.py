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


def _data(tmp_path):
    """params/demo.yaml as a dict."""
    return yaml.safe_load((ROOT / "params" / "demo.yaml").read_text())


def _write(tmp_path, mutate):
    data = _data(tmp_path)
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
        (lambda d: d["local_chain"]["sensors"][0].update(start="2017-02-30"),
         r"sensors\[0\]\.start: not a valid date YYYY-MM-DD \(day is out of range for month\)"),
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


# --------------------------------------------------------------------------------------------
# Parameter files written as text
# --------------------------------------------------------------------------------------------
def _text(tmp_path, text: str | bytes) -> Path:
    p = tmp_path / "p.yaml"
    p.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return p


def _demo_text(tmp_path) -> str:
    return yaml.safe_dump(_data(tmp_path), sort_keys=False)


def _one_line_error(p, pattern):
    with pytest.raises(ConfigError, match=pattern) as info:
        load_config(p)
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"{p}: "), text
    return text


# --------------------------------------------------------------------------------------------
# Type errors never echo the value (a misplaced password must not be printed)
# --------------------------------------------------------------------------------------------
SECRET = "s3cr3t-Pa55w0rd"


@pytest.mark.parametrize(
    ("yaml_text", "pattern"),
    [
        (f"credentials: {{cdse_password: [{SECRET}]}}\n", r"credentials\.cdse_password: must be a string, got a list$"),
        ("credentials: {cdse_password: 2024-01-01}\n",
         r"credentials\.cdse_password: must be a string, got a date \(quote it to keep it as text\)$"),
        ("credentials: {cdse_password: yes}\n", r"cdse_password: must be a string, got true or false \(quote it"),
        (f"credentials: {{cdse_user: {{name: {SECRET}}}}}\n", r"credentials\.cdse_user: .* got a mapping$"),
        (f"credentials: {SECRET}\n", r"credentials: must be a mapping, got a string$"),
        (f"credentials: {{cdse_password:{SECRET}}}\n", r"credentials: unknown key \(not shown: it may hold a secret"),
        (f"credentials: {{ee_key_file: '{{\"type\": \"service_account\", \"private_key\": \"{SECRET}\"}}'}}\n",
         r"credentials\.ee_key_file: holds the key itself \(JSON or PEM\), not the path of a file"),
        (f"stac: {{slstr: {{url: https://x.invalid, assets: cdse, credentials: {SECRET}}}}}\n",
         r"stac\.slstr\.credentials: must be one of 'none', 'cdse', got a string$"),
    ],
)
def test_credentials_of_the_wrong_type_are_never_echoed(tmp_path, yaml_text, pattern):
    text = _demo_text(tmp_path) + yaml_text
    msg = _one_line_error(_text(tmp_path, text), pattern)
    assert SECRET not in msg and "2024" not in msg


def _wrong_values(tp):
    """Values of the wrong type for a schema type, each holding SECRET."""
    import typing

    origin = typing.get_origin(tp)
    if origin in (tuple, list):
        return [{"k": SECRET}, SECRET]
    # a string is the right type for str and Path keys, and for choices (Literal) a misspelt value is quoted
    # on purpose, like an unknown time zone: only outside credentials, see the next test
    text_ok = {str, Path} & {tp, *typing.get_args(tp)} or origin is typing.Literal
    return [[SECRET], {"k": SECRET}] + ([] if text_ok else [SECRET])


def _schema_paths(cls, prefix=()):
    """Every key of the schema (a tuple of names), the dataclass field types with them."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name == "source":
            continue
        tp = hints[f.name]
        yield (*prefix, f.name), tp
        inner = [a for a in typing.get_args(tp) if dataclasses.is_dataclass(a)]
        if dataclasses.is_dataclass(tp):
            inner = [tp]
        for sub in inner:
            yield from _schema_paths(sub, (*prefix, f.name))


def test_no_type_error_of_any_key_echoes_the_value(tmp_path):
    """For every key of the schema, values of the wrong type holding a secret: the error names the key
    and never shows the value."""
    from eo4dm_helpers.config import Config

    checked = 0
    for path, tp in _schema_paths(Config):
        for bad in _wrong_values(tp):
            data = _data(tmp_path)
            node = data
            for name in path[:-1]:
                node = node.setdefault(name, {}) if isinstance(node.get(name, {}), dict) else node[name][0]
            node[path[-1]] = bad
            p = tmp_path / "p.yaml"
            p.write_text(yaml.safe_dump(data))
            with pytest.raises(ConfigError) as info:
                load_config(p)
            assert SECRET not in str(info.value), (path, bad, str(info.value))
            checked += 1
    assert checked > 150


def test_useful_values_are_still_quoted_outside_credentials(tmp_path):
    msg = _one_line_error(_write(tmp_path, lambda d: d.update(backend="gee")), r"backend: must be one of")
    assert msg.endswith("got 'gee'")
