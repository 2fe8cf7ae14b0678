"""Earth Engine initialisation: service-account key, stored user credentials, or offline.

The key file is read from ``credentials.ee_key_file`` or the ``EO4DM_EE_KEY`` environment variable.
Its content is never printed: errors name the file and what to fix, not the account or the key, and
whatever a library says about the key goes through :func:`eo4dm_helpers.redact.redact`. A variable
that holds the key itself instead of its path is refused without being shown.
"""

from __future__ import annotations

import json
import os
import stat
import warnings
from pathlib import Path

import ee

from ..config import Config
from ..redact import redact

KEY_ENV = "EO4DM_EE_KEY"


class AuthError(RuntimeError):
    """Earth Engine credentials are missing, unreadable or rejected; the message says what to fix."""


class OfflineError(RuntimeError):
    """A request was made while Earth Engine is initialised offline (dry run, tests)."""


def initialize_offline() -> None:
    """Initialise earthengine-api with its bundled algorithm signatures: graphs can be built and
    serialised, and any request to Google fails at once with :class:`OfflineError`.

    Relies on private names of earthengine-api (pinned range; ``tests/test_ee_session.py`` tells if
    they change).
    """
    from ee import apitestcase

    ee.Reset()
    ee.data._install_cloud_api_resource = lambda: None  # noqa: SLF001 - no discovery document fetch
    ee.data.getAlgorithms = apitestcase.GetAlgorithms

    def _refuse(*_args, **_kwargs):
        raise OfflineError("Earth Engine is initialised offline (no credentials): this step needs a real "
                           "connection; use --dry-run only to build and review the graphs")

    ee.data.computeValue = _refuse
    ee.Initialize(None, "", project="eo4dm-offline")


def key_path(cfg: Config) -> Path | None:
    if cfg.credentials.ee_key_file is not None:
        return cfg.credentials.ee_key_file
    env = os.environ.get(KEY_ENV)
    return Path(env).expanduser() if env else None


def looks_like_key(value: str) -> bool:
    """True when a path setting holds key material (JSON or PEM) rather than the path of a key file."""
    return value.lstrip().startswith("{") or "private_key" in value or "-----BEGIN" in value or "\n" in value


def read_key(path: Path) -> dict:
    """The service-account key as a dict, or :class:`AuthError` naming the file and the fix."""
    if looks_like_key(str(path)):  # the key pasted where its path belongs: never echoed
        raise AuthError(f"credentials.ee_key_file or ${KEY_ENV} holds the key itself (its JSON), not the path of "
                        "the key file: save the key in a file readable by you only (chmod 600) and give its path")
    where = f"the service-account key {path} (credentials.ee_key_file or ${KEY_ENV})"
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise AuthError(f"{where} does not exist") from None
    except OSError as exc:  # e.g. a name too long, a folder that is not one
        raise AuthError(f"{where} cannot be read ({exc.strerror})") from None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AuthError(f"{where} cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError:  # a binary file: not a key (the message must not show its bytes)
        raise AuthError(f"{where} is not JSON (not even UTF-8 text): download a JSON key for the service "
                        "account") from None
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        warnings.warn(f"{path} is readable by other users: restrict it with `chmod 600 {path}`", stacklevel=2)
    try:
        key = json.loads(text)
    except ValueError:
        raise AuthError(f"{where} is not JSON: download a JSON key for the service account") from None
    if not isinstance(key, dict) or key.get("type") != "service_account" \
            or not isinstance(key.get("private_key"), str) or not key["private_key"] \
            or not isinstance(key.get("client_email"), str) or not key["client_email"]:
        raise AuthError(f"{where} is not a service-account key (expected type service_account with "
                        "client_email and private_key)")
    return key


def initialize(cfg: Config) -> str:
    """Initialise Earth Engine for a real run; returns how ("service account" or "user credentials")."""
    path = key_path(cfg)
    project = cfg.credentials.ee_project
    if path is not None:
        key = read_key(path)
        try:
            creds = ee.ServiceAccountCredentials(key["client_email"], key_data=json.dumps(key))
            ee.Initialize(creds, project=project or key.get("project_id"))
        except Exception as exc:  # google-auth and ee raise many types; the message is what matters
            msg = redact(str(exc), [key.get("client_email"), key.get("private_key"), key.get("private_key_id")])
            raise AuthError(f"Earth Engine rejected the service-account key {path}: {msg}. Check that the "
                            "account is registered for Earth Engine and that credentials.ee_project names a "
                            "Cloud project it may use") from None
        return "service account"
    try:
        ee.Initialize(project=project)
    except Exception as exc:
        raise AuthError("no Earth Engine credentials: set credentials.ee_key_file (or the "
                        f"{KEY_ENV} environment variable) to a service-account key, or run "
                        f"`earthengine authenticate` for user credentials ({exc.__class__.__name__})") from None
    return "user credentials"
