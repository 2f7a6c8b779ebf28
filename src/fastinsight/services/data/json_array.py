"""Stream the elements of one top-level JSON array, in time linear in the input.

Most rows decode straight from the buffered text with the C decoder. A row that does not
(it continues in the next chunk, or it is too deep to decode) is measured first with
:class:`_ValueEnd`, which carries its state from chunk to chunk, so no text is scanned
twice however long the row; the row is then decoded once. The grammar is strict JSON:
rows separated by exactly one comma, nothing but whitespace after the closing ``]``, and
a leading UTF-8 byte order mark ignored (as the CSV reader and the JSON body parser do).
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterator
from typing import IO, Any

from fastinsight.errors import ValidationFailed

CHUNK = 64 * 1024
TOO_DEEP = "nested too deeply to decode (attributes allow 10 levels)"
_WS = " \t\r\n"
_STRUCTURE = re.compile(r'["\[\]{}]')
_STRING_BODY = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*', re.DOTALL)
_SCALAR_END = re.compile(r"[\s,\]}]")

Row = tuple[int, "dict[str, Any] | tuple[str, str]"]
"""(1-based row number, the decoded object or a (field, message) rejection)."""


class _ValueEnd:
    """Finds where the JSON value starting at ``start`` ends, one piece of text at a time
    (strings may hold brackets; a backslash escapes the next character)."""

    def __init__(self, first: str) -> None:
        self.depth = 0
        self.in_string = False  # a string value is entered at its opening quote, below
        self.scalar = first not in '"[{'
        self.resume = 0

    def feed(self, text: str, at: int) -> int | None:
        """The end of the value in ``text`` (scanning from ``at``), or None: give more text,
        and scan it from :attr:`resume`."""
        if self.scalar:
            found = _SCALAR_END.search(text, at)
            self.resume = len(text)
            return found.start() if found else None
        pos = at
        while True:
            if self.in_string:
                body = _STRING_BODY.match(text, pos)
                assert body is not None  # the pattern matches the empty string
                pos = body.end()
                if pos >= len(text) or text[pos] != '"':
                    self.resume = pos  # inside the string, possibly before a lone backslash
                    return None
                pos += 1
                self.in_string = False
                if self.depth == 0:
                    return pos
                continue
            found = _STRUCTURE.search(text, pos)
            if found is None:
                self.resume = len(text)
                return None
            ch = found.group()
            pos = found.end()
            if ch == '"':
                self.in_string = True
            elif ch in "[{":
                self.depth += 1
            else:
                self.depth -= 1
                if self.depth <= 0:
                    return pos


def json_array_rows(stream: IO[bytes]) -> Iterator[Row]:
    """Each element of the array in ``stream``; a 422 for text that is not one JSON array."""
    reader = _Reader(stream)
    try:
        yield from reader.rows()
    except UnicodeDecodeError as exc:
        raise ValidationFailed.field("body", f"not UTF-8: {exc.reason}") from exc


class _Reader:
    def __init__(self, stream: IO[bytes]) -> None:
        pieces = _text(stream)
        self._next: Callable[[], str | None] = lambda: next(pieces, None)
        self.buf = ""
        self.pos = 0
        self.row = 0
        self.decoder = json.JSONDecoder()

    def _more(self) -> bool:
        """Drop the text before ``pos`` and append the next chunk; False at the end."""
        chunk = self._next()
        if chunk is None:
            return False
        self.buf = self.buf[self.pos:] + chunk
        self.pos = 0
        return True

    def _skip_space(self) -> str | None:
        """The next character that is not whitespace (``pos`` on it), None at the end."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in _WS:
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return None

    def rows(self) -> Iterator[Row]:
        if not self._more():
            raise ValidationFailed.field("body", "empty body; send a JSON array")
        first = self._skip_space()
        if first is None:
            raise ValidationFailed.field("body", "empty body; send a JSON array")
        if first != "[":
            raise ValidationFailed.field("body", "a JSON import must be an array of objects")
        self.pos += 1
        if self._skip_space() == "]":
            self.pos += 1
            self._expect_end()
            return
        while True:
            yield self._element()
            ch = self._skip_space()
            if ch == ",":
                self.pos += 1
                if self._skip_space() in {",", "]"}:
                    raise ValidationFailed.field("body", f"a row is missing after row {self.row}")
                continue
            if ch == "]":
                self.pos += 1
                self._expect_end()
                return
            if ch is None:
                raise ValidationFailed.field("body", "the JSON array is not closed with ']'")
            raise ValidationFailed.field("body", f"expected ',' or ']' after row {self.row}")

    def _element(self) -> Row:
        if self._skip_space() is None:
            raise ValidationFailed.field("body", "the JSON array is not closed with ']'")
        try:
            value, end = self.decoder.raw_decode(self.buf, self.pos)
            if end < len(self.buf):  # else a number may go on in the next chunk
                return self._accept(value, end)
        except (ValueError, RecursionError):
            pass
        complete = self._gather()
        try:
            value, end = self.decoder.raw_decode(self.buf, self.pos)
        except RecursionError:
            if not complete:
                raise ValidationFailed.field("body", "the JSON array is not closed with ']'") from None
            self.row += 1
            self.pos = complete
            return self.row, ("(row)", TOO_DEEP)
        except ValueError as exc:
            raise ValidationFailed.field(
                "body", f"not valid JSON after row {self.row}: {getattr(exc, 'msg', exc)}"
            ) from exc
        return self._accept(value, end)

    def _gather(self) -> int:
        """Read on until the value at ``pos`` ends, keeping it in ``buf``; its end, or 0
        when the input ends first. Each chunk is scanned once and all are joined once."""
        text = self.buf[self.pos:]
        scan = _ValueEnd(text[0])
        found = scan.feed(text, 0)
        pieces = [text]
        offset = 0  # where ``text`` starts in the joined pieces
        while found is None:
            chunk = self._next()
            if chunk is None:
                break
            tail = text[scan.resume:]  # empty, or a backslash whose escape is not read yet
            offset += len(text) - len(tail)
            text = tail + chunk
            pieces.append(chunk)
            found = scan.feed(text, 0)
        self.buf = "".join(pieces)
        self.pos = 0
        return 0 if found is None else offset + found

    def _accept(self, value: Any, end: int) -> Row:
        self.row += 1
        self.pos = end
        if isinstance(value, dict):
            return self.row, value
        return self.row, ("(row)", "must be a JSON object")

    def _expect_end(self) -> None:
        while True:
            if self.buf[self.pos:].strip(_WS):
                raise ValidationFailed.field("body", "unexpected text after the closing ']'")
            if not self._more():
                return


def _text(stream: IO[bytes]) -> Iterator[str]:
    """The stream as non-empty pieces of text, without a leading byte order mark."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="strict")
    while chunk := stream.read(CHUNK):
        if text := decoder.decode(chunk):
            yield text
    if tail := decoder.decode(b"", final=True):
        yield tail
