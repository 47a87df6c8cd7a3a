"""The ZIP container of an OFD package, written the same way every time.

Entries are deflated, in the order given, with a fixed date (1980-01-01, the ZIP epoch), fixed
permissions and no directory entries, extra fields or comments: the same files always give the
same bytes, and the verifier's strict reader (local headers repeating the central directory,
no zip64) reads it as written.
"""

from __future__ import annotations

import io
import zipfile

EPOCH = (1980, 1, 1, 0, 0, 0)


def zip_package(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=False) as archive:
        for path, data in files.items():
            info = zipfile.ZipInfo(path, date_time=EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so the permissions below are read as such
            info.external_attr = 0o644 << 16
            archive.writestr(info, data, compresslevel=6)
    return out.getvalue()
