"""No error ever contains a credential (issue #13): eo4dm_helpers.redact finds a service-account key by its
structure whatever the encoding of the message quoting it, and the exact secrets it is given in any form;
runner.scrub (executed notebooks, kernel logs, error messages) and ee.errors.scrub (transfer errors) use it.
Ordinary messages, paths and embedded figures are left alone."""

import base64
import html
import importlib
import io
import json
import random
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import demo_params

# PKCS#8 DER header of an RSA key ("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC..."), then random bytes
DER_HEAD = bytes.fromhex("308204bd020100300d06092a864886f70d0101010500048204a7")


def _redact(text):
    return importlib.import_module("eo4dm_helpers.redact").redact(text)


def _runner_scrub(text):
    return importlib.import_module("eo4dm_helpers.runner").scrub(text, [])


def _errors_scrub(text):
    return importlib.import_module("eo4dm_helpers.ee.errors").scrub(text)


SCRUBBERS = {"redact": _redact, "runner.scrub": _runner_scrub, "ee.errors.scrub": _errors_scrub}


@st.composite
def service_account_keys(draw):
    rng = random.Random(draw(st.integers(0, 2**32)))
    body = base64.b64encode(DER_HEAD + rng.randbytes(draw(st.integers(48, 1200)))).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    project = draw(st.from_regex(r"[a-z][a-z0-9-]{4,12}[a-z0-9]", fullmatch=True))
    account = draw(st.from_regex(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", fullmatch=True))
    return {"type": "service_account", "project_id": project, "private_key_id": f"{rng.getrandbits(160):040x}",
            "private_key": "-----BEGIN PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END PRIVATE KEY-----\n",
            "client_email": f"{account}@{project}.iam.gserviceaccount.com", "client_id": str(rng.getrandbits(64))}


def _body(key):
    return key["private_key"].split("-----")[2].strip()


ENCODINGS = {
    "str(dict)": lambda k: str(k),
    "exception repr": lambda k: f"InvalidValue({k!r}) could not be converted to bytes",
    "json": lambda k: json.dumps(k),
    "repr(json)": lambda k: repr(json.dumps(k)),
    "json(json)": lambda k: json.dumps(json.dumps(k)),
    "json(json(json))": lambda k: json.dumps(json.dumps(json.dumps(k))),
    "repr(bytes)": lambda k: repr(json.dumps(k).encode()),
    "html": lambda k: html.escape(json.dumps(k)),
    "\\u000a newlines": lambda k: json.dumps(k).replace("\\n", "\\u000a"),
    "url quote": lambda k: quote(json.dumps(k)),
    "url quote, nothing safe": lambda k: quote(json.dumps(k), safe=""),
    "url quote_plus": lambda k: quote_plus(str(k)),
    "form body": lambda k: "&".join(f"{n}={quote_plus(str(v))}" for n, v in k.items()),
    "base64 of the PEM body": lambda k: "key data " + base64.b64encode(_body(k).encode()).decode(),
    "base64 of the key": lambda k: base64.b64encode(json.dumps(k).encode()).decode(),
    "urlsafe base64 of the key": lambda k: base64.urlsafe_b64encode(json.dumps(k).encode()).decode(),
    "body, markers lost, \\n": lambda k: k["private_key_id"] + " " + _body(k).replace("\n", "\\n"),
    "body, markers lost": lambda k: f"{k['client_email']}: {_body(k)}",
    "truncated after BEGIN": lambda k: json.dumps(k)[: json.dumps(k).index("-----END") - 30],
    "truncated before END": lambda k: json.dumps(k)[json.dumps(k).index("BEGIN") + 40:],
}


def _forms(piece):
    """A piece of the key as it may appear in an encoded message."""
    forms = {piece, quote(piece, safe=""), quote_plus(piece), json.dumps(piece)[1:-1], html.escape(piece)}
    raw = piece.encode()
    for k in range(3):  # base64 of a text containing the piece, at each byte alignment
        enc = base64.b64encode(b"\0" * k + raw).decode()
        frag = enc[-(-8 * k // 6):(8 * (k + len(raw))) // 6]
        forms |= {frag, frag.replace("+", "-").replace("/", "_")}
    return forms


def _survivors(key, text):
    """Pieces of ``key`` still in ``text``: the e-mail (or its account name), any 20 characters of the key id
    or of the PEM body, in any of their forms."""
    out = [f for f in _forms(key["client_email"]) | _forms(key["client_email"].split("@")[0] + "@") if f in text]
    for piece in (key["private_key_id"], _body(key).replace("\n", "")):
        for form in _forms(piece):
            out += [form[i:i + 20] for i in range(0, len(form) - 19, 7) if form[i:i + 20] in text]
    return out


@pytest.mark.parametrize("scrubber", SCRUBBERS)
@pytest.mark.parametrize("encoding", ENCODINGS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=service_account_keys(), before=st.sampled_from(["", "error: ", "Permission denied: "]),
       after=st.sampled_from(["", " (HTTP 403)", "\nTraceback (most recent call last):"]))
def test_no_piece_of_a_key_survives_any_encoding(scrubber, encoding, key, before, after):
    text = before + ENCODINGS[encoding](key) + after
    assert _survivors(key, text), "the encoding hides nothing: the test would prove nothing"
    out = SCRUBBERS[scrubber](text)
    assert not _survivors(key, out), out[:600]


@given(password=st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=8, max_size=40)
       .filter(lambda p: len(p.strip()) >= 8),
       user=st.from_regex(r"[a-z]{3,10}@example\.org", fullmatch=True))
@settings(max_examples=150, deadline=None)
def test_known_secrets_are_redacted_in_any_form(password, user):
    from eo4dm_helpers.redact import redact

    texts = [password, repr(password), json.dumps(password), json.dumps(json.dumps(password)),
             repr(password.encode()), quote(password, safe=""), quote_plus(password), html.escape(password),
             base64.b64encode(password.encode()).decode(),
             "Authorization: " + base64.b64encode(f"{user}:{password}".encode()).decode(),  # Basic, no prefix
             f"POST data={{'username': {user!r}, 'password': {password!r}}}"]
    for text in texts:
        out = redact(f"error: {text} refused", [password])
        assert password not in out and "<redacted>" in out, (text, out)
        for form in (repr(password)[1:-1], json.dumps(password)[1:-1], quote(password, safe=""),
                     base64.b64encode(password.encode()).decode()):
            assert len(form) < 8 or form not in out, (text, form, out)


def _png_base64():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.imshow(random.Random(1).sample(range(10000), 100) and [[i * j % 7 for i in range(30)] for j in range(30)])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


ORDINARY = [
    "notebook 06_indicators.ipynb failed at cell 4: ArchiveInputError: /tmp/pytest-of-root/pytest-3/secrets0/ws/"
    "archive/composites/global/dekad/MODIS_NDWI_202403_COMPD2.tif has no valid pixel (executed copy: ~/x.ipynb)",
    "params.yaml: credentials.cdse_password: must be a string, got a list",
    "global_MODIS_NDWI_202403_COMPD2: Computation timed out. What to do: export it as a batch task",
    "projects/earthengine-legacy/operations/6GSZW3B4RXHGBVY3UHXNCRH7: FAILED after 12.0 min, 3.4 EECU-seconds",
    "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08, md5 098f6bcd4621d373cade4e832627b4f6",
    "File \"/home/user/eo4dm/eo4dm_helpers/ServiceAccountCredentialsFromInformationLoader.py\", line 12",
    "COPERNICUS/S2_SR_HARMONIZED/20240311T224801_20240311T224803_T58KGB has no band 'SCL'",
    "The token request failed; the password was refused (HTTP 401); see the Basic guide",
]


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_messages_are_left_alone(text):
    from eo4dm_helpers.redact import redact

    assert redact(text) == text


def test_a_password_in_a_url_is_redacted():
    """A catalogue or token URL given with its user and password (``stac.*.url``, ``stac.token_url``)."""
    from eo4dm_helpers.redact import redact

    out = redact("token request to https://eo4dm:hunter2-Pa55@identity.example.org/token failed (HTTP 401)")
    assert out == "token request to https://<redacted>@identity.example.org/token failed (HTTP 401)"
    for text in ("https://stac.example.org:443/v1 answered HTTP 500", "git@github.com:yougis/EO4DM.git"):
        assert redact(text) == text


def test_embedded_figures_are_left_alone():
    from eo4dm_helpers.redact import redact

    png = _png_base64()
    notebook = json.dumps({"cells": [{"outputs": [{"data": {"image/png": png + "\n", "text/plain": "<Figure>"}}]}]})
    page = f'<img src="data:image/png;base64,{png}"><p>VHI 2024-03-D2</p>'
    assert redact(notebook) == notebook and redact(page) == page


# --------------------------------------------------------------------------------------------
# Where messages are scrubbed
# --------------------------------------------------------------------------------------------
def test_the_runner_scrubs_the_cdse_password_in_any_form(tmp_path, monkeypatch):
    """Before: only the exact string was replaced; a repr'd, URL-encoded or base64 password got through."""
    from eo4dm_helpers.config import load_config
    from eo4dm_helpers.runner import scrub, secret_strings

    password = "pa'ss/wörd+2024"
    monkeypatch.setenv("EO4DM_CDSE_PASSWORD", password)
    secrets = secret_strings(load_config(demo_params(tmp_path)))
    for text in (f"refused {password!r}", f"body: password={quote_plus(password)}", json.dumps({"p": password}),
                 "Basic " + base64.b64encode(f"me@example.org:{password}".encode()).decode()):
        out = scrub(text, secrets)
        assert password not in out and quote_plus(password) not in out and "wörd" not in out, out
        assert "<redacted>" in out


def test_the_runner_reads_the_drive_token_and_client_secret(tmp_path):
    """The Drive OAuth files (download.drive_client_secrets, drive_token) hold secrets too."""
    import dataclasses

    from eo4dm_helpers.config import load_config
    from eo4dm_helpers.runner import scrub, secret_strings

    client = tmp_path / "client.json"
    client.write_text(json.dumps({"installed": {"client_id": "1234.apps", "client_secret": "GOCSPX-s3cr3tClient"}}))
    token = tmp_path / "token.json"
    token.write_text(json.dumps({"refresh_token": "1//0gRefreshS3cr3t", "access_token": "ya29.AccessS3cr3t"}))
    cfg = load_config(demo_params(tmp_path))
    cfg = dataclasses.replace(cfg, download=dataclasses.replace(cfg.download, drive_client_secrets=client,
                                                                 drive_token=token))
    out = scrub("client GOCSPX-s3cr3tClient refresh 1//0gRefreshS3cr3t access ya29.AccessS3cr3t",
                secret_strings(cfg))
    assert "S3cr3t" not in out and "s3cr3t" not in out, out


def test_transfer_errors_quoting_a_key_as_escaped_json_are_scrubbed():
    """Before: ``\\"private_key_id\\": \\"...\\"`` (JSON inside JSON) kept the key id."""
    from eo4dm_helpers.ee.errors import classify

    key_id = "0123456789abcdef0123456789abcdef01234567"
    err = classify(RuntimeError("Permission denied: " + json.dumps(json.dumps({"private_key_id": key_id}))),
                   "global_MODIS_NDWI")
    assert key_id not in str(err) and "Permission denied" in str(err)
