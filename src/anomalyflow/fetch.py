"""Fetch a file once from a URL and keep it only if its SHA-256 is the one the config names.

Used by the workflow's local rule ``fetch_teacher`` (files of existing EfficientAD teachers): it runs on
the machine that starts Snakemake, which has internet, while cluster nodes read the kept file. ``file://``
addresses work too (a mirror on a shared disk, and the tests).
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request

from anomalyflow.atomic import atomic_path
from anomalyflow.errors import DataError
from anomalyflow.logs import get_logger

CHUNK = 1 << 20


def fetch_file(url: str, path: str | os.PathLike, sha256: str, *, timeout: float = 60.0,
               progress: bool = True) -> str:
    """Download ``url`` to ``path`` (atomically) and verify its SHA-256; return the hex digest.

    ``sha256`` is 64 hex digits (case ignored). Raises :class:`DataError` naming the URL when it can't be
    read, or when the digest differs (nothing is kept then: a file that fails the check never looks
    finished).
    """
    from tqdm import tqdm

    expected = sha256.strip().lower()
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, atomic_path(path) as tmp:
            total = int(response.headers.get("Content-Length") or 0) or None
            with open(tmp, "wb") as out, tqdm(total=total, unit="B", unit_scale=True, desc=os.path.basename(url),
                                               disable=not progress) as bar:
                while chunk := response.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    bar.update(len(chunk))
            if digest.hexdigest() != expected:
                raise DataError(f"{url}: SHA-256 {digest.hexdigest()} differs from the expected {expected}; "
                                "the download was not kept (check the address and the sha256 in the config)")
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        raise DataError(f"{url}: cannot download ({reason})") from None
    get_logger("fetch").info("fetched %s -> %s (sha256 %s)", url, path, expected)
    return expected
