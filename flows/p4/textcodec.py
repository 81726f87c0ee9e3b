"""The encoding of a text file as Helix writes it into a workspace.

Helix keeps ``utf16`` files as UTF-16 with a byte order mark in the workspace, and
``utf8``/``unicode`` files as UTF-8, with a mark when the client's charset asks for
one (``utf8-bom``, ``utf16``...; Command Reference "File types", "P4CHARSET"). The
merge files a resolver gets are workspace files, so the mark at their start says how
to read them for a person and how to write a person's edited result back.
"""
from __future__ import annotations

import codecs
from dataclasses import dataclass

# UTF-32 first: its little-endian mark begins with UTF-16's.
_MARKS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
          (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


@dataclass(frozen=True)
class TextEncoding:
    codec: str
    bom: bytes = b""

    def decode(self, data: bytes) -> str:
        body = data[len(self.bom):] if self.bom and data.startswith(self.bom) else data
        return body.decode(self.codec, "replace")

    def encode(self, text: str) -> bytes:
        return self.bom + text.encode(self.codec)


UTF8 = TextEncoding("utf-8")


def encoding_of(data: bytes) -> TextEncoding:
    """The encoding a workspace file's first bytes announce; UTF-8 without a mark."""
    for mark, codec in _MARKS:
        if data.startswith(mark):
            return TextEncoding(codec, mark)
    return UTF8


def looks_binary(data: bytes) -> bool:
    """NUL bytes mean binary, except in UTF-16/32 text, where they are half the bytes."""
    return b"\0" in data[:8192] and encoding_of(data).codec == "utf-8"
