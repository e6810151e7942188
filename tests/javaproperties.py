"""A reader of Java properties files written from ``java.util.Properties.load``'s Javadoc,
to check what MyTimetable will read from the portal's on-premises configuration file."""

import re

WHITESPACE = " \t\f"
ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def read(text: str) -> list[tuple[str, str]]:
    """The (key, value) pairs of ``text`` as ``java.util.Properties.load(Reader)`` reads them
    (its Javadoc): natural lines end at \\n, \\r or \\r\\n; a line ending in an odd number of
    backslashes goes on in the next, whose leading whitespace is dropped; a comment starts with
    # or ! and never goes on; the key ends at the first unescaped =, : or whitespace; the
    separator is whitespace with at most one = or :; escapes are \\t \\n \\r \\f \\uXXXX
    and a backslash before anything else stands for that thing."""
    lines, pairs = re.split(r"\r\n|\r|\n", text), []
    i = 0
    while i < len(lines):
        line = lines[i].lstrip(WHITESPACE)
        i += 1
        if not line or line[0] in "#!":
            continue
        while (len(line) - len(line.rstrip("\\"))) % 2 and i < len(lines):
            line = line[:-1] + lines[i].lstrip(WHITESPACE)
            i += 1
        n = 0
        while n < len(line) and line[n] not in "=:" + WHITESPACE:
            n += 2 if line[n] == "\\" else 1
        key, rest = line[:n], line[n:].lstrip(WHITESPACE)
        if rest[:1] in ("=", ":"):
            rest = rest[1:].lstrip(WHITESPACE)
        pairs.append((unescape(key), unescape(rest)))
    return pairs


def unescape(text: str) -> str:
    out, n = [], 0
    while n < len(text):
        c = text[n]
        if c != "\\" or n + 1 == len(text):
            out.append(c)
            n += 1
        elif text[n + 1] == "u":
            out.append(chr(int(text[n + 2 : n + 6], 16)))  # ValueError: malformed, as in Java
            n += 6
        else:
            out.append(ESCAPES.get(text[n + 1], text[n + 1]))
            n += 2
    # Java's strings are UTF-16: two \\u escapes of a surrogate pair are one character.
    return "".join(out).encode("utf-16", "surrogatepass").decode("utf-16")
