"""Copernicus Data Space Ecosystem (CDSE) credentials: from the parameters or the environment, never logged.

``credentials.cdse_user`` / ``credentials.cdse_password`` in the parameter file, else the environment
variables ``EO4DM_CDSE_USER`` / ``EO4DM_CDSE_PASSWORD``. Downloads use an OpenID Connect access token
(password grant, client ``cdse-public``: the CDSE documentation's recipe) fetched once per run; the
password only ever goes to the token endpoint. S3 access keys (``EO4DM_CDSE_S3_KEY`` /
``EO4DM_CDSE_S3_SECRET``) are the alternative for ``s3://eodata`` hrefs (read through GDAL's
``AWS_*`` options; endpoint ``eodata.dataspace.copernicus.eu``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..config import Config

USER_ENV, PASSWORD_ENV = "EO4DM_CDSE_USER", "EO4DM_CDSE_PASSWORD"
S3_KEY_ENV, S3_SECRET_ENV = "EO4DM_CDSE_S3_KEY", "EO4DM_CDSE_S3_SECRET"
CDSE_S3_ENDPOINT = "eodata.dataspace.copernicus.eu"
CLIENT_ID = "cdse-public"


class CredentialsError(RuntimeError):
    """Credentials are missing or were refused (the message never contains them)."""


@dataclass(frozen=True)
class CdseCredentials:
    user: str = field(repr=False)
    password: str = field(repr=False)

    def __repr__(self) -> str:  # never shows the values
        return "CdseCredentials(<set>)"

    __str__ = __repr__


@dataclass(frozen=True)
class S3Keys:
    key: str = field(repr=False)
    secret: str = field(repr=False)

    def __repr__(self) -> str:
        return "S3Keys(<set>)"

    def gdal_options(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.key, "AWS_SECRET_ACCESS_KEY": self.secret,
                "AWS_S3_ENDPOINT": CDSE_S3_ENDPOINT, "AWS_VIRTUAL_HOSTING": "FALSE", "AWS_HTTPS": "YES"}


def cdse_credentials(cfg: Config | None = None, user: str | None = None, password: str | None = None
                     ) -> CdseCredentials:
    """The CDSE user and password: arguments, then the parameters, then the environment."""
    c = cfg.credentials if cfg is not None else None
    user = user or (c.cdse_user if c else None) or os.environ.get(USER_ENV)
    password = password or (c.cdse_password if c else None) or os.environ.get(PASSWORD_ENV)
    if not user or not password:
        raise CredentialsError(f"Copernicus Data Space credentials are needed for this catalogue: set "
                               f"credentials.cdse_user/cdse_password or {USER_ENV}/{PASSWORD_ENV}")
    return CdseCredentials(user, password)


def s3_keys() -> S3Keys | None:
    key, secret = os.environ.get(S3_KEY_ENV), os.environ.get(S3_SECRET_ENV)
    return S3Keys(key, secret) if key and secret else None


def secrets_of(cfg: Config) -> list[str]:
    """Strings to scrub from anything shown (executed notebooks, logs, messages)."""
    c = cfg.credentials
    values = [c.cdse_password, os.environ.get(PASSWORD_ENV), os.environ.get(S3_SECRET_ENV), os.environ.get(S3_KEY_ENV)]
    return [v for v in values if v]


def fetch_token(creds: CdseCredentials, token_url: str, session=None, timeout: float = 30.0) -> str:
    """An access token for ``creds`` (password grant). Errors name the endpoint and the HTTP status only."""
    import requests

    http = session or requests
    try:
        r = http.post(token_url, data={"grant_type": "password", "username": creds.user, "password": creds.password,
                                       "client_id": CLIENT_ID}, timeout=timeout)
    except requests.RequestException as exc:
        raise CredentialsError(f"token request to {token_url} failed ({exc.__class__.__name__})") from None
    if r.status_code in (400, 401, 403):
        raise CredentialsError(f"{token_url} refused the Copernicus Data Space credentials (HTTP {r.status_code})")
    if r.status_code != 200:
        raise CredentialsError(f"{token_url} answered HTTP {r.status_code}")
    try:
        return str(r.json()["access_token"])
    except (ValueError, KeyError):
        raise CredentialsError(f"{token_url} answered without an access token") from None
