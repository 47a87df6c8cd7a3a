"""An uploaded OFD package (a ZIP, GB/T 33190) read as hostile input, in the limited worker.

A licence package this service writes is a dozen small entries, deflated or stored, without
encryption, zip64, symbolic links or directories that matter. Anything else is refused by name
before a byte is inflated: the central directory is read by hand (``zipfile`` forgives too much:
overlapping entries, data before the first entry, names with ``..``), every entry's local header
must repeat the central directory's claims, and the entries must tile the file from byte 0 to the
central directory with nothing hidden between them — so no two names share compressed bytes (the
overlapping-entry bomb) and no bytes are outside every entry. Sizes are capped from the claims
first (entries, each entry's and the total uncompressed size, the compression ratio, the name
length), then while inflating: an entry never inflates past the size it declared.

Its XML files are read by ``verify.ofd_xml`` (defusedxml, bounded).

Refusals follow the PDF path's vocabulary (``verify.structure``): a file that cannot be read as a
ZIP is INDETERMINATE/MALFORMED, a size or count beyond a limit INDETERMINATE/LIMIT_EXCEEDED, a
forbidden construct (path traversal, duplicate or case-folded duplicate names, symbolic links,
encryption, inconsistent headers, DTDs, entities) FAILED/FORMAT_FAILURE — never a licence of ours.
"""

from __future__ import annotations

import re
import struct
import unicodedata
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from verify.report import Indication, SubIndication
from verify.structure import Inspection, refuse

if TYPE_CHECKING:
    from verify.isolation import Limits

_EOCD = b"PK\x05\x06"
_CENTRAL = b"PK\x01\x02"
_LOCAL = b"PK\x03\x04"
_DESCRIPTOR = b"PK\x07\x08"
_EOCD_SIZE, _CENTRAL_SIZE, _LOCAL_SIZE = 22, 46, 30
_STORED, _DEFLATED = 0, 8
_ENCRYPTED_FLAGS = 0x0001 | 0x0040 | 0x2000  # encrypted, strong encryption, masked directory
_DESCRIPTOR_FLAG = 0x0008
_UTF8_FLAG = 0x0800
_UNIX = 3
_FILE_TYPE = 0o170000
_REGULAR, _DIRECTORY = 0o100000, 0o040000
_CHUNK = 64 * 1024  # inflate in pieces, so a lie about the size is caught after 64 KiB


# The names a licence package of this service is made of. A report names an entry only if its
# name is one of these; any other is named by what it is not, so no text an uploader chose (a
# "call this number" in an entry's name, say) reaches the verdict page.
_OWN_NAME = re.compile(
    r"OFD\.xml|Doc_0/(Document|PublicRes|DocumentRes)\.xml"
    r"|Doc_0/Res/(font|image)_\d{1,3}\.(ttf|otf|jpg|png)|Doc_0/Pages/Page_\d{1,3}/Content\.xml"
    r"|Doc_0/Signs/(Signatures\.xml|Sign_\d{1,3}/(Signature\.xml|Seal\.esl|SignedValue\.dat))"
)
UNNAMED = "[an entry not named as a licence's]"


def shown(name: str) -> str:
    """``name`` as a report may show it: a licence package's own names only."""
    bare = name.lstrip("/")
    return bare if _OWN_NAME.fullmatch(bare) else UNNAMED


class Refused(Exception):
    """A refusal on its way out of the package reader: carries the ``Inspection``."""

    def __init__(self, inspection: Inspection) -> None:
        super().__init__(inspection.detail)
        self.inspection = inspection


def malformed(detail: str) -> Refused:
    return Refused(refuse("package", detail, Indication.INDETERMINATE, SubIndication.MALFORMED))


def forbidden(detail: str) -> Refused:
    return Refused(refuse("package", detail, Indication.FAILED, SubIndication.FORMAT_FAILURE))


def over_limit(detail: str) -> Refused:
    return Refused(refuse("limits", detail, Indication.INDETERMINATE, SubIndication.LIMIT_EXCEEDED))


def looks_like_zip(data: bytes) -> bool:
    """What the parent looks at to send an upload down the OFD path: a ZIP's first signature
    (a local header, or the end record of an empty archive). Whether it is an OFD at all is the
    worker's to find out."""
    return data[:4] in (_LOCAL, _EOCD)


@dataclass(frozen=True)
class Package:
    """The files of a package, by name (no leading slash), in the order they are stored."""

    files: dict[str, bytes]
    directories: frozenset[str]


@dataclass(frozen=True)
class _Entry:
    name: str
    raw: bytes
    flags: int
    method: int
    crc: int
    compressed: int
    size: int
    offset: int
    directory: bool


def read_package(data: bytes, limits: Limits) -> Package:
    """The package's files, inflated under the limits; raises ``Refused``."""
    count, cd_offset, cd_size = _end_record(data, limits)
    entries = _central_directory(data, count, cd_offset, cd_size, limits)
    files: dict[str, bytes] = {}
    position = 0
    for entry in sorted(entries, key=lambda e: e.offset):
        if entry.offset != position:
            raise forbidden(
                f"条目之间有隐藏数据或重叠 / bytes {position}..{entry.offset} hidden between or "
                f"under entries (at {shown(entry.name)})"
            )
        start, position = _local_header(data, entry, cd_offset)
        if not entry.directory:
            files[entry.name] = _inflate(data[start : start + entry.compressed], entry)
    if position != cd_offset:
        raise forbidden(
            f"中央目录前有多余数据 / {cd_offset - position} bytes between the last entry and "
            "the central directory"
        )
    ordered = {e.name: files[e.name] for e in entries if not e.directory}
    return Package(ordered, frozenset(e.name for e in entries if e.directory))


def _end_record(data: bytes, limits: Limits) -> tuple[int, int, int]:
    """The end-of-central-directory record, which must end the file exactly (its comment, if
    any, included): a ZIP with bytes after it, or split over disks, or zip64, is refused."""
    if len(data) < _EOCD_SIZE:
        raise malformed(f"不是ZIP文件 / not a ZIP file ({len(data)} bytes)")
    at = data.rfind(_EOCD, max(0, len(data) - _EOCD_SIZE - 0xFFFF))
    while at >= 0:
        if at + _EOCD_SIZE <= len(data):
            comment = struct.unpack_from("<H", data, at + 20)[0]
            if at + _EOCD_SIZE + comment == len(data):
                break
        at = data.rfind(_EOCD, max(0, len(data) - _EOCD_SIZE - 0xFFFF), at)
    if at < 0:
        if data[:4] == _LOCAL:
            raise malformed(
                "ZIP文件不完整（无结束记录）/ truncated ZIP: no end-of-directory record"
            )
        raise malformed("不是ZIP文件 / not a ZIP file (no end-of-directory record)")
    disk, cd_disk, here, total, cd_size, cd_offset, _ = struct.unpack_from("<4H2IH", data, at + 4)
    if max(here, total) > limits.max_zip_entries:  # 0xFFFF: zip64 holds the real count
        many = "65535+" if 0xFFFF in (here, total) else str(max(here, total))
        raise over_limit(f"条目过多 / {many} entries > {limits.max_zip_entries}")
    if 0xFFFFFFFF in (cd_size, cd_offset):
        raise forbidden("ZIP64 未被证照使用 / zip64 archives are not licence packages")
    if disk or cd_disk or here != total:
        raise forbidden("分卷ZIP / multi-disk ZIP archives are refused")
    if cd_offset + cd_size != at:
        raise forbidden(
            f"中央目录位置与声明不符 / the central directory claims {cd_offset}+{cd_size}, "
            f"the end record is at {at}"
        )
    return total, cd_offset, cd_size


def _central_directory(
    data: bytes, count: int, cd_offset: int, cd_size: int, limits: Limits
) -> list[_Entry]:
    entries: list[_Entry] = []
    folded: set[str] = set()
    position, end = cd_offset, cd_offset + cd_size
    total = 0
    for _ in range(count):
        if position + _CENTRAL_SIZE > end or data[position : position + 4] != _CENTRAL:
            raise forbidden(f"中央目录损坏 / central directory broken at byte {position}")
        (made_by, _, flags, method, _, _, crc, compressed, size, name_len, extra_len) = (
            struct.unpack_from("<6H3I2H", data, position + 4)
        )
        comment_len, _, _, external, offset = struct.unpack_from("<3H2I", data, position + 32)
        raw = data[position + _CENTRAL_SIZE : position + _CENTRAL_SIZE + name_len]
        position += _CENTRAL_SIZE + name_len + extra_len + comment_len
        if position > end:
            raise forbidden("中央目录越界 / a central directory record runs past its end")
        name, directory = _name(raw, flags, limits)
        key = unicodedata.normalize("NFC", name).casefold()
        if key in folded:
            raise forbidden(
                f"重复的文件名 / duplicate entry name {shown(name)} (names compared case-folded)"
            )
        folded.add(key)
        _check_kind(name, made_by, external, directory)
        if flags & _ENCRYPTED_FLAGS:
            raise forbidden(f"加密条目 / encrypted entry {shown(name)}")
        if method not in (_STORED, _DEFLATED):
            raise forbidden(f"不支持的压缩方法 / compression method {method} in {shown(name)}")
        if 0xFFFFFFFF in (compressed, size, offset):
            raise forbidden("ZIP64 未被证照使用 / zip64 entries are not licence packages")
        if directory and size:
            raise forbidden(f"目录条目含有数据 / directory entry {shown(name)} carries data")
        _check_size(name, method, compressed, size, limits)
        total += size
        if total > limits.max_zip_total_bytes:
            raise over_limit(
                f"解压后总量过大 / entries inflate to more than {limits.max_zip_total_bytes} bytes"
            )
        entries.append(_Entry(name, raw, flags, method, crc, compressed, size, offset, directory))
    if position != end:
        raise forbidden("中央目录含有多余数据 / bytes after the last central directory record")
    _check_tree(entries)
    return entries


def _name(raw: bytes, flags: int, limits: Limits) -> tuple[str, bool]:
    """An entry's name, refused unless it is a plain relative path inside the package."""
    if not raw or len(raw) > limits.max_zip_name_bytes:
        raise over_limit(
            f"文件名长度 / entry name of {len(raw)} bytes (1..{limits.max_zip_name_bytes})"
        )
    try:
        name = raw.decode("utf-8") if flags & _UTF8_FLAG else raw.decode("ascii")
    except UnicodeDecodeError:
        raise forbidden("文件名编码无效 / an entry name is not UTF-8") from None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise forbidden(f"文件名含控制字符 / control character in entry name {shown(name)}")
    if "\\" in name or ":" in name:
        raise forbidden(f"文件名含反斜杠或盘符 / backslash or drive letter in {shown(name)}")
    if name.startswith("/"):
        raise forbidden(f"绝对路径 / absolute entry name {shown(name)}")
    directory = name.endswith("/")
    parts = (name[:-1] if directory else name).split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise forbidden(f"路径穿越或空路径段 / '..', '.' or an empty segment in {shown(name)}")
    return (name[:-1] if directory else name), directory


def _check_kind(name: str, made_by: int, external: int, directory: bool) -> None:
    """Unix mode bits, where the writer set them: a regular file or a directory, nothing else."""
    if made_by >> 8 != _UNIX:
        return
    kind = (external >> 16) & _FILE_TYPE
    if kind == 0o120000:
        raise forbidden(f"符号链接条目 / symbolic link entry {shown(name)}")
    if kind not in (0, _REGULAR, _DIRECTORY) or (kind and (kind == _DIRECTORY) != directory):
        raise forbidden(f"特殊文件条目 / entry {shown(name)} is not a regular file")


def _check_size(name: str, method: int, compressed: int, size: int, limits: Limits) -> None:
    if size > limits.max_zip_entry_bytes:
        raise over_limit(
            f"条目过大 / {shown(name)} inflates to {size} bytes > {limits.max_zip_entry_bytes}"
        )
    if method == _STORED and compressed != size:
        raise forbidden(f"存储条目大小不一致 / stored entry {shown(name)}: {compressed} != {size}")
    if size > limits.zip_ratio_floor_bytes and size > limits.max_zip_ratio * max(compressed, 1):
        raise over_limit(
            f"压缩比过高 / {shown(name)} claims {size} bytes from {compressed} "
            f"(more than {limits.max_zip_ratio}:1)"
        )


def _check_tree(entries: list[_Entry]) -> None:
    """A file's name is never also a folder of another entry."""
    files = {e.name.casefold() for e in entries if not e.directory}
    for entry in entries:
        parts = entry.name.casefold().split("/")
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in files:
                raise forbidden(f"文件名与目录冲突 / {shown(entry.name)} lies under a file")


def _local_header(data: bytes, entry: _Entry, cd_offset: int) -> tuple[int, int]:
    """Where the entry's data starts and where the next entry must start; the local header must
    repeat the central directory's name, flags, method and (unless a data descriptor follows)
    sizes and CRC."""
    at = entry.offset
    if at + _LOCAL_SIZE > cd_offset or data[at : at + 4] != _LOCAL:
        raise forbidden(f"本地文件头缺失 / no local header for {shown(entry.name)} at byte {at}")
    _, flags, method, _, _, crc, compressed, size, name_len, extra_len = struct.unpack_from(
        "<5H3I2H", data, at + 4
    )
    raw = data[at + _LOCAL_SIZE : at + _LOCAL_SIZE + name_len]
    if raw != entry.raw or flags != entry.flags or method != entry.method:
        raise forbidden(
            f"本地文件头与中央目录不符 / the local header of {shown(entry.name)} differs from its "
            "central directory record"
        )
    start = at + _LOCAL_SIZE + name_len + extra_len
    end = start + entry.compressed
    if end > cd_offset:
        raise forbidden(f"条目越界 / {shown(entry.name)} runs into the central directory")
    if flags & _DESCRIPTOR_FLAG:
        return start, _descriptor(data, entry, end, cd_offset)
    if (crc, compressed, size) != (entry.crc, entry.compressed, entry.size):
        raise forbidden(
            f"本地文件头与中央目录不符 / sizes or CRC of {shown(entry.name)} differ between headers"
        )
    return start, end


def _descriptor(data: bytes, entry: _Entry, at: int, cd_offset: int) -> int:
    """A data descriptor after the entry (with or without its signature), matching the claims."""
    skip = 4 if data[at : at + 4] == _DESCRIPTOR else 0
    if at + skip + 12 > cd_offset:
        raise forbidden(f"数据描述符缺失 / no data descriptor after {shown(entry.name)}")
    crc, compressed, size = struct.unpack_from("<3I", data, at + skip)
    if (crc, compressed, size) != (entry.crc, entry.compressed, entry.size):
        raise forbidden(
            f"数据描述符与中央目录不符 / data descriptor of {shown(entry.name)} differs"
        )
    return at + skip + 12


def _inflate(raw: bytes, entry: _Entry) -> bytes:
    """The entry's bytes, never more than it declared: inflating stops one chunk past the
    declared size, and a stream that ends early, goes on, or fails its CRC is refused."""
    if entry.method == _STORED:
        out = raw
    else:
        inflater = zlib.decompressobj(-15)
        pieces: list[bytes] = []
        got, pending = 0, raw
        try:
            while pending and not inflater.eof:
                piece = inflater.decompress(pending, _CHUNK)
                got += len(piece)
                if got > entry.size:
                    raise over_limit(
                        f"条目解压后超出声明大小 / {shown(entry.name)} inflates past its declared "
                        f"{entry.size} bytes"
                    )
                pieces.append(piece)
                pending = inflater.unconsumed_tail
            if not inflater.eof:
                tail = inflater.flush(1)
                got += len(tail)
                pieces.append(tail)
        except zlib.error as exc:
            raise forbidden(f"压缩数据损坏 / {shown(entry.name)}: {exc}") from None
        if not inflater.eof or inflater.unused_data or pending:
            raise forbidden(
                f"压缩数据不完整或有多余数据 / {shown(entry.name)}: deflate stream broken"
            )
        out = b"".join(pieces)
    if len(out) != entry.size:
        raise forbidden(
            f"大小与声明不符 / {shown(entry.name)}: {len(out)} bytes, declared {entry.size}"
        )
    if zlib.crc32(out) != entry.crc:
        raise forbidden(f"CRC校验失败 / {shown(entry.name)}: CRC-32 mismatch")
    return out


def inspect_package(data: bytes, limits: Limits) -> Inspection:
    """The package and every XML file in it, read under the limits: ``ok``, or the refusal."""
    from verify.ofd_xml import parse_xml

    try:
        package = read_package(data, limits)
        for name, content in package.files.items():
            if name.lower().endswith(".xml"):
                parse_xml(name, content, limits)
    except Refused as refused:
        return refused.inspection
    return Inspection(True, objects=len(package.files))
