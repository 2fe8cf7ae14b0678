"""The only place that sends requests to Google: Earth Engine (values, pixels, exports) and Drive.

Everything is behind small Protocols so that tests use fakes (``eo4dm_helpers.ee.fakes``). The live
classes only translate calls; retries, checks and file handling live in ``pixels``, ``drive`` and
``transfer``. Error messages are scrubbed of account addresses and keys (``errors.scrub``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import ee
import numpy as np

from .errors import DriveError, scrub
from .plan import ExportPlan

# Properties set by the graph builders that a run reports (window widening, image counts).
REPORTED = ("images", "window_level", "window_start", "window_end", "nan_score")


@dataclass(frozen=True)
class TaskStatus:
    """An export task as the poller needs it (from an Earth Engine Operation)."""

    state: str  # PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED (CANCELLING counts as RUNNING)
    error: str | None = None
    eecu_seconds: float | None = None  # batch EECU usage reported by Earth Engine
    start: float | None = None  # epoch seconds
    update: float | None = None
    destinations: tuple[str, ...] = ()

    @property
    def done(self) -> bool:
        return self.state in ("SUCCEEDED", "FAILED", "CANCELLED")


@dataclass(frozen=True)
class DriveFile:
    """A file in Drive with the metadata the download is checked against."""

    id: str
    name: str
    size: int  # bytes (Drive's fileSize)
    md5: str  # Drive's md5Checksum
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


class EarthEngineIO(Protocol):
    def compute_value(self, obj: ee.ComputedObject) -> Any: ...


class PixelIO(Protocol):
    def compute_pixels(self, request: dict[str, Any]) -> np.ndarray:
        """``ee.data.computePixels(request)`` with ``fileFormat: NUMPY_NDARRAY``: a structured array
        (rows, cols) with one field per band."""
        ...


class ExportIO(Protocol):
    def start_export(self, params: dict[str, Any], request_id: str) -> str:
        """Start ``Export.image.toDrive(**params)``; the same ``request_id`` never starts a second task.
        Returns the task's operation name."""
        ...

    def task_status(self, task: str) -> TaskStatus: ...


class DriveIO(Protocol):
    def list_files(self, prefix: str) -> list[DriveFile]:
        """Files (not trashed) whose name starts with ``prefix``."""
        ...

    def download(self, file: DriveFile, dest: Path) -> None: ...

    def delete(self, file: DriveFile) -> None: ...

    def free_bytes(self) -> int | None:
        """Free storage of the Drive, ``None`` when unknown or unlimited."""
        ...


class TransferIO(PixelIO, ExportIO, Protocol):
    """What ``transfer.download_dekad`` needs: pixels, exports, and a Drive (``None``: direct only)."""

    drive: DriveIO | None


class LiveIO:
    """Real requests to Earth Engine (after ``session.initialize``), and to Drive through ``drive``."""

    def __init__(self, drive: DriveIO | None = None) -> None:
        self.drive = drive

    def compute_value(self, obj: ee.ComputedObject) -> Any:
        return obj.getInfo()

    def compute_pixels(self, request: dict[str, Any]) -> np.ndarray:
        return ee.data.computePixels(request)

    def start_export(self, params: dict[str, Any], request_id: str) -> str:
        # Export.image.toDrive builds the request (crs, crsTransform, region, maxPixels folded in);
        # ee.data.exportImage with our request id is idempotent, so a retried start cannot duplicate it.
        task = ee.batch.Export.image.toDrive(**params)
        return ee.data.exportImage(request_id, task.config)["name"]

    def task_status(self, task: str) -> TaskStatus:
        return task_status_of(ee.data.getOperation(task))


def _epoch(ts: str | None) -> float | None:
    if not ts:
        return None
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def task_status_of(operation: dict[str, Any]) -> TaskStatus:
    """A :class:`TaskStatus` from an Earth Engine Operation (``ee.data.getOperation``)."""
    meta = operation.get("metadata", {})
    state = meta.get("state", "PENDING")
    state = {"CANCELLING": "RUNNING", "SUCCEEDED": "SUCCEEDED", "FAILED": "FAILED", "CANCELLED": "CANCELLED",
             "RUNNING": "RUNNING"}.get(state, "PENDING")
    error = operation.get("error", {}).get("message") if operation.get("done") else None
    eecu = meta.get("batchEecuUsageSeconds")
    return TaskStatus(state, error, float(eecu) if eecu is not None else None, _epoch(meta.get("startTime")),
                      _epoch(meta.get("updateTime")), tuple(meta.get("destinationUris", ())))


class PyDrive2Drive:
    """Drive through pydrive2 (Drive API v2), with service-account or user credentials."""

    def __init__(self, drive: Any) -> None:
        self._drive = drive  # pydrive2.drive.GoogleDrive

    @classmethod
    def service_account(cls, key_file: Path) -> PyDrive2Drive:
        """Authenticate with a service-account key (read by ``session.read_key``, never printed).

        Note: a service account has no Drive storage; Earth Engine exports must be written by a user
        or into a shared drive (see ``errors.HINT_SERVICE_ACCOUNT``).
        """
        from pydrive2.auth import GoogleAuth
        from pydrive2.drive import GoogleDrive

        from .session import read_key

        key = read_key(Path(key_file))
        settings = {"client_config_backend": "service", "service_config": {"client_json_dict": key},
                    "oauth_scope": ["https://www.googleapis.com/auth/drive"]}
        try:
            gauth = GoogleAuth(settings=settings)
            gauth.ServiceAuth()
        except Exception as exc:  # pydrive2/oauth2client raise many types; the message matters
            raise DriveError(f"Drive rejected the service-account key {key_file}: {scrub(str(exc))}") from None
        return cls(GoogleDrive(gauth))

    @classmethod
    def user(cls, client_secrets: Path, saved_credentials: Path, *, interactive: bool = False) -> PyDrive2Drive:
        """Authenticate as a user: OAuth client ``client_secrets``, token kept in ``saved_credentials``.

        Without a saved token, ``interactive=True`` opens the browser flow once; otherwise the error says so.
        """
        from pydrive2.auth import GoogleAuth
        from pydrive2.drive import GoogleDrive

        settings = {"client_config_backend": "file", "client_config_file": str(client_secrets),
                    "save_credentials": True, "save_credentials_backend": "file",
                    "save_credentials_file": str(saved_credentials), "get_refresh_token": True,
                    "oauth_scope": ["https://www.googleapis.com/auth/drive"]}
        try:
            gauth = GoogleAuth(settings=settings)
            gauth.LoadCredentialsFile(str(saved_credentials))
            if gauth.credentials is None:
                if not interactive:
                    raise DriveError(f"no saved Drive credentials in {saved_credentials}: authorise once with "
                                     "PyDrive2Drive.user(..., interactive=True) in a notebook")
                gauth.LocalWebserverAuth()
            elif gauth.access_token_expired:
                gauth.Refresh()
            else:
                gauth.Authorize()
        except DriveError:
            raise
        except Exception as exc:
            raise DriveError(f"Drive user authentication failed ({client_secrets}): {scrub(str(exc))}") from None
        return cls(GoogleDrive(gauth))

    def list_files(self, prefix: str) -> list[DriveFile]:
        q = "title contains '{}' and trashed = false".format(prefix.replace("\\", "\\\\").replace("'", "\\'"))
        items = self._drive.ListFile({"q": q, "maxResults": 1000, "supportsAllDrives": True,
                                      "includeItemsFromAllDrives": True}).GetList()
        return [DriveFile(f["id"], f["title"], int(f.get("fileSize", -1)), f.get("md5Checksum", ""))
                for f in items if f["title"].startswith(prefix)]

    def download(self, file: DriveFile, dest: Path) -> None:
        self._drive.CreateFile({"id": file.id}).GetContentFile(str(dest))

    def delete(self, file: DriveFile) -> None:
        self._drive.CreateFile({"id": file.id}).Delete(param={"supportsAllDrives": True})

    def free_bytes(self) -> int | None:
        about = self._drive.GetAbout()
        if about.get("quotaType") == "UNLIMITED" or "quotaBytesTotal" not in about:
            return None
        used = int(about.get("quotaBytesUsedAggregate", about.get("quotaBytesUsed", 0)))
        return max(0, int(about["quotaBytesTotal"]) - used)


def describe(plans: list[ExportPlan], io: EarthEngineIO) -> dict[str, dict[str, Any]]:
    """Image counts and chosen windows of every product of a dekad in ONE request, whatever the
    number of images (no per-image client loop)."""
    info = ee.Dictionary({p.product: p.image.toDictionary(list(REPORTED)) for p in plans})
    return io.compute_value(info)
