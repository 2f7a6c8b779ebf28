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
_SCALAR_END = re.compile(r"[\s,\]}]")
_STRING_BODY = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*', re.DOTALL)
_BETWEEN = re.compile(r"[ \t\r\n]*,[ \t\r\n]*\S")

Reject = Callable[[str, str], Any]
"""Makes a rejected row's value from (field, message)."""


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
                pos = _string_end(text, pos)
                if pos < 0:
                    self.resume = -pos - 1  # inside the string, possibly before a lone backslash
                    return None
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


def _string_end(text: str, pos: int) -> int:
    """Just past the quote closing the string whose body starts at ``pos``; when ``text``
    ends first, ``-resume - 1`` (resume: where to scan again with more text). A string
    without escapes is crossed with ``str.find``; one with escapes by a regular expression
    (both in C, in one pass)."""
    quote = text.find('"', pos)
    if text.find("\\", pos, len(text) if quote < 0 else quote) < 0:
        return -len(text) - 1 if quote < 0 else quote + 1
    body = _STRING_BODY.match(text, pos)
    assert body is not None  # the pattern matches the empty string
    end = body.end()
    if end < len(text) and text[end] == '"':
        return end + 1
    return -end - 1  # at the end of the text, or before a backslash whose pair is not read yet


def json_array_rows(stream: IO[bytes], reject: Reject) -> Iterator[tuple[int, Any]]:
    """``(row number, object)`` for each element of the array in ``stream``, ``(row
    number, reject(field, message))`` for an element that is not one; a 422 for text that
    is not one JSON array."""
    return _Reader(stream, reject).rows()


class _Reader:
    def __init__(self, stream: IO[bytes], reject: Reject) -> None:
        self.reject = reject
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

    def rows(self) -> Iterator[tuple[int, Any]]:
        try:
            if self._start():
                yield from self._elements()
        except UnicodeDecodeError as exc:
            raise ValidationFailed.field("body", f"not UTF-8: {exc.reason}") from exc

    def _start(self) -> bool:
        """Past the opening ``[``; False for an empty array (checked to its end)."""
        if not self._more() or (first := self._skip_space()) is None:
            raise ValidationFailed.field("body", "empty body; send a JSON array")
        if first != "[":
            raise ValidationFailed.field("body", "a JSON import must be an array of objects")
        self.pos += 1
        if self._skip_space() == "]":
            self.pos += 1
            self._expect_end()
            return False
        return True

    def _elements(self) -> Iterator[tuple[int, Any]]:
        raw_decode, between, not_object = self.decoder.raw_decode, _BETWEEN.match, None
        while True:  # ``pos`` is on the first character of a row, or at the end of ``buf``
            buf, pos = self.buf, self.pos
            try:
                value, end = raw_decode(buf, pos)
            except (ValueError, RecursionError):
                end = len(buf)
            if end < len(buf):  # decoded from what was read (else it may go on)
                self.row += 1
                if type(value) is dict:
                    yield self.row, value
                else:
                    not_object = not_object or self.reject("(row)", "must be a JSON object")
                    yield self.row, not_object
                # The common case in one step: a comma, then the next row's first character.
                found = between(buf, end)
                if found is not None and buf[found.end() - 1] not in ",]":
                    self.pos = found.end() - 1
                    continue
                self.pos = end
            else:
                yield self._long_element()
            if not self._delimiter():
                return

    def _delimiter(self) -> bool:
        """Past the ``,`` and onto the next row (True), or past the closing ``]`` (False)."""
        ch = self._skip_space()
        if ch == ",":
            self.pos += 1
            if self._skip_space() in {",", "]", None}:
                if self.pos >= len(self.buf):
                    raise ValidationFailed.field("body", "the JSON array is not closed with ']'")
                raise ValidationFailed.field("body", f"a row is missing after row {self.row}")
            return True
        if ch == "]":
            self.pos += 1
            self._expect_end()
            return False
        if ch is None:
            raise ValidationFailed.field("body", "the JSON array is not closed with ']'")
        raise ValidationFailed.field("body", f"expected ',' or ']' after row {self.row}")

    def _long_element(self) -> tuple[int, Any]:
        """A row that did not decode from what was read: read on to its end, decode once."""
        if self._skip_space() is None:
            raise ValidationFailed.field("body", "the JSON array is not closed with ']'")
        complete = self._gather()
        try:
            value, end = self.decoder.raw_decode(self.buf, self.pos)
        except RecursionError:
            if not complete:
                raise ValidationFailed.field("body", "the JSON array is not closed with ']'") from None
            self.row += 1
            self.pos = complete
            return self.row, self.reject("(row)", TOO_DEEP)
        except ValueError as exc:
            raise ValidationFailed.field(
                "body", f"not valid JSON after row {self.row}: {getattr(exc, 'msg', exc)}"
            ) from exc
        self.row += 1
        self.pos = end
        return self.row, value if type(value) is dict else self.reject("(row)", "must be a JSON object")

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
