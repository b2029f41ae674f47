"""WeChat's flat XML messages, parsed without entity expansion and with a size cap."""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

# Real callbacks are a few hundred bytes; a cap keeps a hostile body from costing memory or time.
MAX_XML_BYTES = 64 * 1024
# WeChat and WeCom send UTF-8; expat cannot read multi-byte legacy encodings (gbk, big5...).
_SUPPORTED_ENCODINGS = {"utf-8", "utf8", "us-ascii", "ascii"}
_DECLARATION = re.compile(
    rb"^(?:\xef\xbb\xbf)?\s*<\?xml\b[^>]*?\bencoding\s*=\s*[\"']([^\"']*)[\"']"
)


class XmlError(Exception):
    """The body is not a WeChat message we will read: answer 400."""


def parse_message(body: bytes, *, max_bytes: int = MAX_XML_BYTES) -> dict[str, str]:
    """The <xml> root's child elements as a flat dict (nested elements keep their text only)."""
    if len(body) > max_bytes:
        raise XmlError(f"body larger than {max_bytes} bytes")
    declared = _DECLARATION.match(body)
    if declared is not None:
        encoding = declared.group(1).decode("ascii", errors="replace")
        if encoding.lower() not in _SUPPORTED_ENCODINGS:
            raise XmlError(f"unsupported encoding {encoding[:40]!r}; send UTF-8")
    try:
        root: Element = fromstring(body, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError, LookupError) as exc:
        raise XmlError(f"malformed XML: {exc}") from None
    if root.tag != "xml":
        raise XmlError("root element must be <xml>")
    return {child.tag: (child.text or "").strip() for child in root}


def _cdata(value: str) -> str:
    # A "]]>" inside a value would end the section early; split it across two sections.
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def build_message(fields: dict[str, str | int]) -> str:
    """An <xml> document in WeChat's style: numbers bare, text in CDATA."""
    parts = []
    for name, value in fields.items():
        text = str(value) if isinstance(value, int) else _cdata(value)
        parts.append(f"<{name}>{text}</{name}>")
    return "<xml>" + "".join(parts) + "</xml>"
