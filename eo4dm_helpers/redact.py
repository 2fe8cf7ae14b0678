"""Redaction of credentials from anything shown: error messages, logs, executed notebooks, kernel logs.

Two layers, applied by :func:`redact`:

* the exact secrets a caller knows (the CDSE password, S3 keys, the fields of a service-account key),
  in their raw, repr'd, JSON-escaped (up to three times), URL-encoded, HTML-escaped and base64 forms
  (base64 at every byte alignment, so a secret is found inside a larger encoded blob such as an HTTP
  ``Basic`` header);
* the structure of credentials, whoever quotes them: PEM blocks (``-----BEGIN ...-----`` to ``-----END
  ...-----``) whatever the escaping of the newlines or the markers (``\\n``, ``\\\\n``, ``\\u000a``,
  ``%0A``, URL-encoded markers), a truncated PEM block, a run of base64 that looks like key material
  even when the markers are lost, service-account e-mails (``...@....gserviceaccount.com``), 40-hex
  private key ids, bearer tokens, ``user:password@`` in URLs, and the values of ``private_key``,
  ``private_key_id``, ``client_secret``, ``refresh_token``, ``access_token``, ``client_email``,
  ``password``... when a dict, JSON, repr or query string of them is quoted.

Base64 runs are told from ordinary text by their length (>= 40 characters), their mixture of upper
case, lower case and digits changing class at almost every character, and few ``/``: paths and
identifiers do not look like that. Embedded images (PNG, JPEG, GIF, WebP, PDF signatures, ``data:``
URIs) are kept: executed notebooks carry their figures as base64.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, unquote

REDACTED = "<redacted>"
MIN_SECRET = 4  # shorter "secrets" would redact ordinary words

# an escaped or encoded newline: real, \n, \\n, \\\\n, \u000a, %0A, %5Cn (URL-encoded backslash-n)
_NL = r"(?:\r?\n|\\+[nr]|\\+u000[aAdD]|%0[aAdD]|%5[cC]n|%5[cC]r)"
_DASHES = r"(?:-|%2[dD]){5}"
_SP = r"(?: |\+|%20|\\+u0020)"
_LABEL = rf"[A-Z0-9]+(?:{_SP}[A-Z0-9]+)*"
_BEGIN = rf"{_DASHES}BEGIN{_SP}{_LABEL}{_DASHES}"
_END = rf"{_DASHES}END{_SP}{_LABEL}{_DASHES}"
_B64C = r"(?:[A-Za-z0-9+/=]|%2[bBfF]|%3[dD])"
_PEM = re.compile(rf"{_BEGIN}.{{0,20000}}?{_END}", re.S)
_PEM_HEAD = re.compile(rf"{_BEGIN}(?:{_B64C}|{_NL})*")  # END lost (a truncated message)
_END_RE = re.compile(_END)
_TAIL = re.compile(rf"(?:{_B64C}|{_NL})*\Z")  # the body before an END marker whose BEGIN was lost
_RUN = re.compile(rf"(?:{_B64C}|{_NL})+")
_CANDIDATE = re.compile(r"[A-Za-z0-9+/=%\\\r\n]{40,}")  # a superset of the runs worth a look (fast to scan)
_HEX = re.compile(r"[0-9a-fA-F]{40,}")

_SECRET_KEYS = (r"(?:private_key_id|private_key|client_secret|refresh_token|access_token|id_token|client_email|"
                r"[a-z_]*password|passwd|aws_secret_access_key|secret_access_key|aws_access_key_id|api_key|apikey)")
_KEY_HINTS = ("private_key", "secret", "token", "client_email", "passw", "access_key", "api_key", "apikey")
_QUOTE = r"(?:\\*[\"']|%22|%27|&quot;|&#x27;|&#39;)"
_SEP = r"\s*(?:[:=]|%3[aAdD])\s*(?:%20)*"
_VALUE = r"(?:(?!%2[0267cC]|%7[dD]|%5[cCdD]|&quot;|&#)[^\s\"'&,;})\]\\<>])+"
_KV_QUOTED = re.compile(rf"(\b{_SECRET_KEYS}{_QUOTE}?{_SEP}b?{_QUOTE}){_VALUE}", re.I)  # 'k': 'v', "k": "v"
_KV_KEYQ = re.compile(rf"(\b{_SECRET_KEYS}{_QUOTE}{_SEP}){_VALUE}", re.I)  # "k": 123 (a number)
_KV_EQUALS = re.compile(rf"(\b{_SECRET_KEYS}\s*(?:=|%3[dD])){_VALUE}", re.I)  # k=v (query strings)
_BEARER = re.compile(r"\b(Bearer|Authorization\W{1,6}Basic)(\s+|%20|\+)[A-Za-z0-9._~+/%-]{8,}=*", re.I)
_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/\s:@\"'<>]+:[^/\s@\"'<>]+@", re.I)  # scheme://user:pw@
_SA_EMAIL = re.compile(r"[\w.+%-]+(?:@|%40|\\+u0040|&#64;)[\w.%-]*gserviceaccount(?:\.|%2[eE])com")
_MEDIA = ("iVBORw0KGgo", "/9j/", "R0lGOD", "UklGR", "JVBERi0", "PHN2Zy", "d09G")  # PNG JPEG GIF WebP PDF SVG WOFF


def _classes(s: str) -> list[int]:
    return [0 if c.isupper() else 1 if c.islower() else 2 if c.isdigit() else 3 for c in s]


def looks_like_key_material(run: str) -> bool:
    """True for a run of base64 (escaped newlines and URL escapes allowed) that looks like key material."""
    s = re.sub(_NL, "", run[:8192])
    s = unquote(s) if "%" in s else s
    s = s.rstrip("=")[:4096]
    if len(s) < 40 or s.startswith(_MEDIA):
        return False
    cls = _classes(s)
    if not {0, 1, 2} <= set(cls):
        return False
    if sum(c in "+/" for c in s) > 0.12 * len(s):  # a path, not base64 (3 % of base64 characters are + or /)
        return False
    changes = sum(a != b for a, b in zip(cls, cls[1:], strict=False))
    return changes >= 0.4 * (len(s) - 1)  # base64: 65 % on average; words and identifiers: far fewer


def _runs(text: str) -> str:
    """Runs of base64 that look like key material (see :func:`looks_like_key_material`)."""

    def precise(m: re.Match[str]) -> str:
        return REDACTED if looks_like_key_material(m.group(0)) else m.group(0)

    def candidate(m: re.Match[str]) -> str:
        run = m.group(0)
        if text[max(0, m.start() - 7):m.start()] == "base64," or re.sub(_NL, "", run[:64]).startswith(_MEDIA):
            return run  # an embedded figure (data: URI, image bytes)
        return _RUN.sub(precise, run) if any(c in run for c in "%\\\r\n") else precise(m)

    return _CANDIDATE.sub(candidate, text)


def _key_ids(text: str) -> str:
    """40-hex strings (private key ids), alone or right after a URL escape (``%22``)."""

    def sub(m: re.Match[str]) -> str:
        start = m.start() + 2 if text[m.start() - 1:m.start()] == "%" else m.start()
        return m.group(0) if m.end() - start != 40 else m.group(0)[: start - m.start()] + REDACTED

    return _HEX.sub(sub, text)


def _pem_tails(text: str) -> str:
    """END markers whose BEGIN was lost, with the base64 body before them (at most 8000 characters)."""
    out, pos = [], 0
    for m in _END_RE.finditer(text):
        lo = max(pos, m.start() - 8000)
        body = _TAIL.search(text, lo, m.start())
        cut = body.start() if body else m.start()
        out += [text[pos:cut], REDACTED]
        pos = m.end()
    return "".join(out) + text[pos:] if out else text


def _b64_fragments(raw: bytes) -> set[str]:
    """The base64 characters that depend on ``raw`` alone, at each of the 3 byte alignments."""
    out = set()
    for k in range(3):
        enc = base64.b64encode(b"\0" * k + raw).decode()
        first, last = -(-8 * k // 6), (8 * (k + len(raw))) // 6  # characters [first, last) are ours only
        frag = enc[first:last]
        out |= {frag, frag.replace("+", "-").replace("/", "_")}
    return out


def secret_forms(secret: str) -> set[str]:
    """``secret`` as it may appear in a message: raw, repr'd, JSON-escaped (nested up to 3 times),
    URL-encoded, HTML-escaped and base64 (any alignment)."""
    forms = {secret}
    level = {secret}
    for _ in range(3):
        nxt = set()
        for s in level:
            nxt |= {json.dumps(s)[1:-1], json.dumps(s, ensure_ascii=False)[1:-1], repr(s)[1:-1],
                    repr(s.encode("utf-8", "surrogatepass"))[2:-1]}
        level = nxt - forms
        forms |= nxt
    for s in list(forms):
        forms |= {quote(s, safe=""), quote(s), quote_plus(s), html.escape(s)}
    forms |= _b64_fragments(secret.encode("utf-8", "surrogatepass"))
    return {f for f in forms if len(f) >= MIN_SECRET}


def redact(text: str, secrets: Iterable[object] = ()) -> str:
    """``text`` without the given secrets (any form) nor anything shaped like a credential."""
    forms: set[str] = set()
    for s in secrets:
        s = s if isinstance(s, str) else str(s) if s is not None else ""
        if len(s.strip()) >= MIN_SECRET:
            forms |= secret_forms(s)
    for f in sorted(forms, key=len, reverse=True):
        text = text.replace(f, REDACTED)
    if "BEGIN" in text:
        text = _PEM_HEAD.sub(REDACTED, _PEM.sub(REDACTED, text))
    if "END" in text:
        text = _pem_tails(text)
    low = text.lower()
    if any(k in low for k in _KEY_HINTS):
        for pattern in (_KV_QUOTED, _KV_KEYQ, _KV_EQUALS):
            text = pattern.sub(rf"\1{REDACTED}", text)
    if "bearer" in low or "basic" in low:
        text = _BEARER.sub(rf"\1\2{REDACTED}", text)
    if "://" in text and "@" in text:
        text = _USERINFO.sub(rf"\1{REDACTED}@", text)
    if "gserviceaccount" in low:
        text = _SA_EMAIL.sub(REDACTED, text)
    return _runs(_key_ids(text))
