"""From article bytes to text: byte-order mark first, then UTF-8, then a legacy code page.

Web copies arrive as UTF-8 mostly, sometimes with a BOM, sometimes saved as UTF-16 or UTF-32
by an editor (always with a BOM then), and now and then in Windows-1252 ("not UTF-8"). The
BOM, when there is one, decides; UTF-8 is tried next because it almost never decodes text that
is not UTF-8; cp1252 maps nearly every byte, so whatever is left stays readable. Whether the
result is text at all is judged on the decoded characters, so a UTF-16 file (half of whose
bytes are zero) is text, and a file of zero bytes and control codes is not.
"""

from __future__ import annotations

import codecs
import hashlib

#: Longest first: the UTF-32 LE mark begins with the UTF-16 LE one.
BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
LEGACY_ENCODING = "cp1252"
#: How much of a file is looked at to tell text from binary, and the share of control
#: characters (other than tab, line and page breaks) above which it is binary.
BINARY_SAMPLE_CHARS = 8192
BINARY_CONTROL_SHARE = 0.05


def detect_encoding(data: bytes) -> tuple[str, int]:
    """The encoding of ``data`` and the length of its BOM (0 when it has none)."""
    for bom, encoding in BOMS:
        if data.startswith(bom):
            return encoding, len(bom)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return LEGACY_ENCODING, 0
    return "utf-8", 0


def decode(data: bytes) -> str:
    """The text of ``data``, decoded as :func:`detect_encoding` says, the BOM left out.

    Bytes that do not fit the encoding (a truncated UTF-16 file, cp1252's five unused
    bytes) become U+FFFD rather than an error: one bad byte must not lose an article.
    """
    encoding, skip = detect_encoding(data)
    return data[skip:].decode(encoding, errors="replace")


def looks_binary(text: str) -> bool:
    """The decoded text is not prose: it holds NUL characters, or too many control codes."""
    sample = text[:BINARY_SAMPLE_CHARS]
    if "\x00" in sample:
        return True
    controls = sum(1 for c in sample if ord(c) < 9 or 13 < ord(c) < 32)
    return bool(sample) and controls / len(sample) > BINARY_CONTROL_SHARE


def content_hash(data: bytes, extra: str = "") -> str:
    digest = hashlib.sha256(data)
    if extra:
        digest.update(b"\x00" + extra.encode())
    return digest.hexdigest()
