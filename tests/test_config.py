from pathlib import Path

import pytest
import yaml

from eo4dm_helpers.config import ConfigError, load_config, parse_dekad, public_view

from .conftest import zone_layer

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["demo.yaml", "new_caledonia.yaml"])
def test_shipped_parameter_files_load(name):
    # their zone layers are data, not in the repository (/demo/ is built by `make demo`, /data/ deployed)
    cfg = load_config(ROOT / "params" / name, check_layers=False)
    assert cfg.territory.timezone == "Pacific/Noumea"
    assert cfg.global_chain.grid.width > 0
    assert cfg.paths.archive.is_absolute()


def test_relative_paths_resolve_against_the_file(tmp_path):
    cfg = load_config(ROOT / "params" / "demo.yaml", check_layers=False)
    assert cfg.paths.archive == (ROOT / "demo" / "archive").resolve()


def _data(tmp_path):
    """params/demo.yaml as a dict, its zone layer (written) in ``tmp_path``."""
    data = yaml.safe_load((ROOT / "params" / "demo.yaml").read_text())
    data["territory"]["zones"] = str(zone_layer(tmp_path / "zones.geojson"))
    return data


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
    cfg = load_config(ROOT / "params" / "demo.yaml", check_layers=False)
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
# Hostile YAML (issue #13): refused in one line naming the file, the line and the key
# --------------------------------------------------------------------------------------------
# a "billion laughs": 9 levels of 10 references, 10^9 strings from 1 KB, all inside one value
BOMB = "[&a [x, x, x, x, x, x, x, x, x, x], " + ", ".join(
    f"&{n} [{', '.join([f'*{p}'] * 10)}]" for p, n in zip("abcdefgh", "bcdefghi", strict=True)) + "]"


def test_an_alias_bomb_is_refused_at_once(tmp_path):
    """A "billion laughs" (10^9 strings from 1 KB) under territory.name: the echo of the wrong-typed
    value expanded it in memory before. Run in a subprocess with 1 GiB of address space and a time limit,
    so that a regression fails instead of eating the machine."""
    import subprocess
    import sys
    import textwrap

    text = _demo_text(tmp_path).replace("name: New Caledonia (demo)", f"name: {BOMB}")
    p = _text(tmp_path, text)
    code = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from eo4dm_helpers.config import ConfigError, load_config
        try:
            load_config({str(p)!r})
        except ConfigError as exc:
            print(exc)
        """)
    try:
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    except subprocess.TimeoutExpired:
        pytest.fail("the alias bomb was still being expanded after 60 s")
    assert res.returncode == 0 and "anchors (&) and aliases (*) are not allowed" in res.stdout, res.stderr[-500:]
    assert f"line {text.splitlines().index(f'  name: {BOMB}') + 1}: " in res.stdout


@pytest.mark.parametrize(
    ("extra", "pattern"),
    [
        ("defaults: &d {min_years: 3}\n", r"line \d+: anchors \(&\) and aliases \(\*\) are not allowed"),
        ("x: !!int 12\ny: *undefined\n", r"anchors \(&\) and aliases \(\*\) are not allowed"),
        ("reference_defaults: {<<: {min_years: 3}}\n", r"line \d+: merge keys \(<<\) are not allowed"),
    ],
)
def test_anchors_aliases_and_merge_keys_are_refused(tmp_path, extra, pattern):
    _one_line_error(_text(tmp_path, _demo_text(tmp_path) + extra), pattern)


@pytest.mark.parametrize("depth", [40, 5000, 100_000])
def test_deep_nesting_is_refused(tmp_path, depth):
    p = _text(tmp_path, _demo_text(tmp_path).replace("code: NC", "code: " + "[" * depth + "]" * depth))
    _one_line_error(p, r"line \d+: nested more than 32 levels deep")


def test_a_repeated_key_names_the_key_and_both_lines(tmp_path):
    text = _demo_text(tmp_path)
    lines = text.splitlines()
    at = lines.index("  alpha: 0.5") if "  alpha: 0.5" in lines else None
    if at is None:  # demo.yaml has no alpha: add it twice under indicators
        at = lines.index("indicators:")
        lines[at + 1:at + 1] = ["  alpha: 0.4", "  alpha: 0.6"]
    p = _text(tmp_path, "\n".join(lines) + "\n")
    _one_line_error(p, rf"line {at + 3}: indicators\.alpha: repeated key \(first given line {at + 2}\)")
    # a section given twice (e.g. appended at the end of the file)
    p = _text(tmp_path, text + "territory:\n  name: Fidji\n")
    _one_line_error(p, r"line \d+: territory: repeated key \(first given line 1\)")


@pytest.mark.parametrize(
    ("raw", "pattern"),
    [
        ("territory:\n  name: Nouméa\n".encode("latin-1"), r"line 2: not UTF-8 text \(byte 0xe9\)"),
        ("territory: x\n".encode("utf-16"), r"line 1: not UTF-8 text \(byte 0xff\)"),
        (b"II*\x00\x08\x00\x00\x00\x93\xa7\x01", r"line 1: not UTF-8 text \(byte 0x93\)"),  # a GeoTIFF
    ],
)
def test_a_file_that_is_not_utf8_is_refused(tmp_path, raw, pattern):
    _one_line_error(_text(tmp_path, raw), pattern)


@pytest.mark.parametrize(
    ("old", "new", "pattern"),
    [
        ("history_start: 2020-01-01", "history_start: 2024-02-30",
         r"history_start: not a valid date YYYY-MM-DD \(day is out of range for month, line \d+\)"),
        ("as_of: 2024-03-21", "as_of: 2023-02-29", r"as_of: not a valid date YYYY-MM-DD \(day is out of range"),
        ("start: 2017-03-28", "start: 2017-13-28",
         r"local_chain\.sensors\[0\]\.start: not a valid date YYYY-MM-DD \(month must be in 1\.\.12"),
        ("as_of: 2024-03-21", "as_of: 2024-03-21 10:00:00", r"as_of: must be a date YYYY-MM-DD, got a date and time"),
        ("code: NC", "code: 2024-02-30", r"territory\.code: must be a string, got an impossible date"),
    ],
)
def test_impossible_dates_name_the_key(tmp_path, old, new, pattern):
    text = _demo_text(tmp_path)
    assert old in text
    _one_line_error(_text(tmp_path, text.replace(old, new, 1)), pattern)


@pytest.mark.parametrize(
    ("old", "new", "pattern"),
    [
        ("width: 156", "width: !!int twelve", r"not valid YAML \(a value cannot be read: ValueError\)"),
        ("resolution: 0.03125", "resolution: .inf", r"global_chain\.grid\.resolution: must be a finite number"),
        ("x0: 163.4375", "x0: .nan", r"global_chain\.grid\.x0: must be a finite number"),
    ],
)
def test_unreadable_or_non_finite_values(tmp_path, old, new, pattern):
    text = _demo_text(tmp_path)
    assert old in text
    _one_line_error(_text(tmp_path, text.replace(old, new, 1)), pattern)


def test_a_huge_file_is_not_read(tmp_path):
    p = _text(tmp_path, _demo_text(tmp_path) + ("# padding " * 12 + "\n") * 10_000)
    _one_line_error(p, r"larger than 1 MiB: not a parameter file")


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
