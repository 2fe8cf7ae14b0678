"""Errors of the transfers from Earth Engine and Drive: which ones are worth a retry, and what to do.

Only network errors, HTTP 429 and 5xx are transient (ARCHITECTURE.md §7): they are retried a bounded
number of times with exponential backoff. Everything else fails at once with a message that says what
to do. Messages never carry a key, a token or an account address (:func:`scrub`).
"""

from __future__ import annotations

import http.client
import random
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ..redact import redact

T = TypeVar("T")


class TransferError(RuntimeError):
    """A transfer failed; the message names the product and says what to do."""


class TransientError(TransferError):
    """Network error, HTTP 429 or 5xx: worth another try."""


class EarthEngineError(TransferError):
    """A deterministic Earth Engine error (memory, time-out, missing asset, permission, quota)."""


class DriveError(TransferError):
    """A Drive error that a retry cannot fix (quota, permission, missing file)."""


class VerificationError(TransferError):
    """A downloaded file does not match Drive's size or md5."""


class ExportTimeout(TransferError):
    """An export task did not finish in time (it keeps running; a rerun resumes it)."""


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_KEY = re.compile(r"(\bkey[\"']?\s*[=:]\s*[\"']?)[^\s&\"',}]+", re.I)  # API keys in URLs (?key=...)


def scrub(text: str) -> str:
    """``text`` without credentials (:func:`eo4dm_helpers.redact.redact`: PEM keys, key ids, tokens,
    secret values), ``key=...`` values or account addresses."""
    text = _KEY.sub(r"\1<redacted>", redact(text))
    return _EMAIL.sub("<account>", text)


# -- what to do, per deterministic Earth Engine error (DOMAIN.md §5.5, ARCHITECTURE.md §7) ------------
HINT_MEMORY = ("the computation needs more memory than an interactive request allows: fetch smaller tiles "
               "(lower the request size) or export it as a batch task (method 'drive'), which has more memory")
HINT_TIMEOUT = ("interactive requests stop after a few minutes: export it as a batch task (method 'drive') "
                "or fetch smaller tiles")
HINT_NOT_FOUND = "check the collection or asset ID in the product specification and that the project can read it"
HINT_PERMISSION = ("the account may not use this project or asset: register the Cloud project for Earth Engine "
                   "(credentials.ee_project), grant the account the Earth Engine Resource Viewer role, or use "
                   "credentials that can read the asset")
HINT_QUOTA = ("the Cloud project's Earth Engine quota is used up: wait for it to refill, ask for more quota for "
              "the project (Google Cloud console, IAM & Admin > Quotas), or use another project "
              "(credentials.ee_project)")
HINT_SIZE = ("the request is larger than computePixels accepts (48 MB, 32K px per side, 1024 bands): tile it "
             "(eo4dm_helpers.ee.tiles) or export it (method 'drive')")
HINT_EXPORT_PIXELS = "raise maxPixels in ExportPlan.export or export a smaller region"
HINT_DRIVE_QUOTA = ("the Drive storage is full (a free account has 15 GB): free space in that Drive (exports "
                    "are deleted once downloaded and verified, so look for older files), or export fewer "
                    "products at a time")
HINT_SERVICE_ACCOUNT = ("a service account has no Drive storage of its own: files it creates are owned by it and "
                        "count against its zero quota, even in a folder a user shared with it. Export with user "
                        "credentials (`earthengine authenticate`, and pydrive2 user auth), or into a shared drive "
                        "(Google Workspace) the service account is a member of. A folder of a user's Drive "
                        "shared with the service account only lets it read the files that user exported there")
HINT_DRIVE_PERMISSION = ("the Drive account cannot read or delete this file: share the export folder with the "
                         "account used by pydrive2 (as editor), or use the same account for Earth Engine and Drive")

# (pattern, error class, hint); first match wins. Transient ones are retried, the others are not.
_RULES: list[tuple[re.Pattern[str], type[TransferError], str]] = [
    (re.compile(r"service accounts? do(?:es)? not have storage quota", re.I), DriveError, HINT_SERVICE_ACCOUNT),
    (re.compile(r"storage ?quota|drive.*quota|quota.*drive|insufficient (?:drive )?storage", re.I), DriveError,
     HINT_DRIVE_QUOTA),
    (re.compile(r"user memory limit exceeded|memory capacity exceeded|out of memory", re.I), EarthEngineError,
     HINT_MEMORY),
    (re.compile(r"computation timed out", re.I), EarthEngineError, HINT_TIMEOUT),
    (re.compile(r"request payload size exceeds|total request size|must be less than or equal to \d+ bytes|"
                r"grid dimensions? .*exceed|too many bands", re.I), EarthEngineError, HINT_SIZE),
    (re.compile(r"export too large|too many pixels", re.I), EarthEngineError, HINT_EXPORT_PIXELS),
    # HTTP 429 (rate, concurrency; Google's generic 429 text is "Resource has been exhausted") and 5xx
    (re.compile(r"too many (?:concurrent|requests)|rate ?limit|per minute|try again later|"
                r"resource (?:has been )?exhausted|\bunavailable\b|internal (?:server )?error|backend error|"
                r"bad gateway|gateway time-?out|deadline exceeded|"
                r"(?:http|status|code|error)\W{0,3}(?:429|50[0234])\b", re.I),
     TransientError, "transient; retried"),
    (re.compile(r"quota", re.I), EarthEngineError, HINT_QUOTA),
    (re.compile(r"not found|does not exist|no such", re.I), EarthEngineError, HINT_NOT_FOUND),
    (re.compile(r"permission|not authori[sz]ed|forbidden|access denied|\bcaller does not have", re.I),
     EarthEngineError, HINT_PERMISSION),
]

_TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
_DRIVE_TRANSIENT_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "backendError", "internalError"}


def _status(exc: BaseException) -> int | None:
    """The HTTP status of googleapiclient/pydrive2/urllib/requests errors, if any."""
    for attr in ("status_code", "code", "status"):
        v = getattr(exc, attr, None)
        if isinstance(v, int) and 100 <= v < 600:
            return v
    resp = getattr(exc, "resp", None) or getattr(exc, "response", None)
    v = getattr(resp, "status", None) or getattr(resp, "status_code", None)
    if isinstance(v, int):
        return v
    err = getattr(exc, "error", None)  # pydrive2.files.ApiRequestError
    if isinstance(err, dict) and isinstance(err.get("code"), int):
        return err["code"]
    return None


def _drive_reason(exc: BaseException) -> str:
    err = getattr(exc, "error", None)
    if isinstance(err, dict):
        errors = err.get("errors") or [{}]
        return str(errors[0].get("reason", ""))
    return ""


def _is_network(exc: BaseException) -> bool:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return False
    if isinstance(exc, ConnectionError | TimeoutError | http.client.HTTPException | ssl.SSLError):
        return True
    names = {f"{c.__module__}.{c.__name__}" for c in type(exc).__mro__}
    return bool(names & {"httplib2.error.ServerNotFoundError", "httplib2.ServerNotFoundError",
                         "google.auth.exceptions.TransportError", "requests.exceptions.ConnectionError",
                         "requests.exceptions.Timeout", "requests.exceptions.ChunkedEncodingError",
                         "urllib3.exceptions.ProtocolError", "urllib3.exceptions.ReadTimeoutError"}) or (
        type(exc).__name__ == "URLError" and _status(exc) is None)


def classify(exc: BaseException, what: str, *, drive: bool = False) -> TransferError:
    """The :class:`TransferError` for ``exc`` raised while doing ``what`` (a product name, a file),
    with what to do; ``drive`` selects the Drive hints for HTTP 403/404. The original message is kept,
    scrubbed of secrets."""
    if isinstance(exc, TransferError):
        return exc
    text = scrub(str(exc) or type(exc).__name__).strip().rstrip(".")
    if _is_network(exc):
        return TransientError(f"{what}: network error ({type(exc).__name__}: {text})")
    status, reason = _status(exc), _drive_reason(exc)
    if drive and reason in ("storageQuotaExceeded", "quotaExceeded"):
        return DriveError(f"{what}: {text}. What to do: {HINT_DRIVE_QUOTA}")
    for pattern, cls, hint in _RULES:
        if pattern.search(text) or pattern.search(reason):
            if cls is TransientError and status is not None and status not in _TRANSIENT_STATUS \
                    and reason not in _DRIVE_TRANSIENT_REASONS:
                continue  # e.g. a 400 whose text mentions a limit
            if cls is TransientError:
                return TransientError(f"{what}: {text}")
            if drive and cls is EarthEngineError and status in (401, 403, 404):
                break  # Drive's own hints below
            return cls(f"{what}: {text}. What to do: {hint}")
    if status in _TRANSIENT_STATUS or reason in _DRIVE_TRANSIENT_REASONS:
        return TransientError(f"{what}: HTTP {status}: {text}")
    if drive and status in (401, 403):
        return DriveError(f"{what}: HTTP {status}: {text}. What to do: {HINT_DRIVE_PERMISSION}")
    if drive and status == 404:
        return DriveError(f"{what}: HTTP 404: {text}. What to do: the file is no longer in Drive (moved or "
                          "deleted?); rerun to export it again")
    if status in (401, 403):
        return EarthEngineError(f"{what}: HTTP {status}: {text}. What to do: {HINT_PERMISSION}")
    if status == 404:
        return EarthEngineError(f"{what}: HTTP 404: {text}. What to do: {HINT_NOT_FOUND}")
    kind = DriveError if drive else EarthEngineError
    return kind(f"{what}: {type(exc).__name__}: {text} (not retried: only network errors, HTTP 429 and 5xx are)")


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff for transient errors: ``base * factor**k`` seconds (capped), with
    jitter so that parallel requests do not retry in step."""

    attempts: int = 5  # tries in all, the first included
    base: float = 1.0
    factor: float = 2.0
    max_delay: float = 60.0
    jitter: float = 0.25  # each delay is multiplied by a random factor in [1 - jitter, 1]

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        d = min(self.max_delay, self.base * self.factor ** (failures - 1))
        return d * (1 - self.jitter * (rng or random).random())


RETRY = RetryPolicy()


def call_with_retry(fn: Callable[[], T], what: str, policy: RetryPolicy = RETRY, *,
                    sleep: Callable[[float], None] = time.sleep, log: Callable[[str], None] | None = None,
                    drive: bool = False) -> T:
    """``fn()``, retried on transient errors only; any other error is raised at once, classified."""
    failures = 0
    while True:
        try:
            return fn()
        except Exception as exc:  # classified below; deterministic errors are re-raised at once
            err = classify(exc, what, drive=drive)
            failures += 1
            if not isinstance(err, TransientError) or failures >= policy.attempts:
                if isinstance(err, TransientError):
                    err = TransientError(f"{err} (gave up after {failures} tries; rerun later to resume)")
                raise err from None
            wait = policy.delay(failures)
            if log:
                log(f"{what}: {err.args[0].split(': ', 1)[-1]} - retry {failures}/{policy.attempts - 1} in "
                    f"{wait:.1f} s")
            sleep(wait)
