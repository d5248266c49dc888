"""Reading uploaded text whose encoding nobody declared: UTF-8 (with or without the BOM spreadsheets add), else
GB18030, the superset of GBK that older Chinese spreadsheet software saves. Used by population uploads and bulk
imports, for bytes held in memory and for files streamed from disk.

Detection tries UTF-8 strictly first: GBK text with Chinese characters is practically never valid UTF-8, while
every UTF-8 file would decode (to nonsense) as GB18030.
"""

from __future__ import annotations

import codecs
import io
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from notifier.errors import NotifierError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

UTF8 = "utf-8-sig"  # strips a leading BOM, reads plain UTF-8 unchanged
GBK = "gb18030"
_BLOCK = 1 << 16


class UnreadableUpload(NotifierError):
    """The upload cannot be read as text at all."""

    status = 400
    title = "Bad request"


def decode_text(raw: bytes, what: str = "the CSV file") -> str:
    """UTF-8 (with or without BOM), else GB18030; UnreadableUpload when it is neither."""
    return decode_detected(raw, what)[0]


def decode_detected(raw: bytes, what: str = "the file") -> tuple[str, str]:
    """The text, and the codec it was read with (UTF8 or GBK)."""
    for codec in (UTF8, GBK):
        try:
            return raw.decode(codec), codec
        except UnicodeDecodeError:
            pass
    raise UnreadableUpload(f"{what} is neither UTF-8 nor GBK text")


def encoding_name(codec: str) -> str:
    """The name reports show: `utf-8` or `gbk`."""
    return "utf-8" if codec == UTF8 else "gbk"


def detect_file_encoding(path: Path) -> str:
    """UTF8 when the whole file is UTF-8, else GBK; read in blocks, so any size takes constant memory."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    with path.open("rb") as stream:
        try:
            while block := stream.read(_BLOCK):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return GBK
    return UTF8


def file_head(path: Path, codec: str, size: int = 4096) -> str:
    """The first characters of a file (for sniffing its format; a character cut in two is dropped)."""
    with path.open("rb") as stream:
        return stream.read(size).decode(codec, errors="ignore")


class CountingReader(io.RawIOBase):
    """A binary stream that counts the bytes read through it (progress of a text reader over a large file)."""

    def __init__(self, inner: BinaryIO) -> None:
        super().__init__()
        self.inner = inner
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self.inner.read(len(view))
        view[:len(data)] = data
        self.consumed += len(data)
        return len(data)

    def close(self) -> None:
        self.inner.close()
        super().close()


def open_text(path: Path, codec: str) -> tuple[io.TextIOWrapper, CountingReader]:
    """The file as text in `codec` (newlines left as they are, as the csv module wants), and its byte counter."""
    counter = CountingReader(path.open("rb"))
    return io.TextIOWrapper(io.BufferedReader(counter, _BLOCK), encoding=codec, errors="strict", newline=""), counter
