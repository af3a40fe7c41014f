"""The part of GLib's key-file format that ``tools.conf`` uses, read as GLib reads it.

vmtoolsd loads ``tools.conf`` with ``g_key_file_load_from_file`` (open-vm-tools
``libvmtools/vmtoolsConfig.c``, ``VMTools_LoadConfig``) and reads each key with
``g_key_file_get_boolean/_integer/_string`` (``VMTools_ConfigGet*``). The rules below are
GLib's (GNOME/glib ``glib/gkeyfile.c``: ``g_key_file_parse_line``,
``g_key_file_parse_key_value_pair``, ``g_key_file_parse_value_as_boolean``,
``..._as_integer``, ``..._as_string``), checked against Debian 12's libglib 2.74 (the
conformance tests compare this module with the real library when it is installed):

- a line is blank, a comment (``#`` after optional white space), a group ``[name]`` (white
  space after ``]`` only), or ``key=value``; anything else fails the whole load, and so does a
  ``key=value`` before the first group, a key starting with ``=`` or holding ``[``/``]``
  outside a locale suffix, and a UTF-8 byte-order mark (it makes the first line unknown);
- keys are case-sensitive; white space around the key and before the value is dropped; the
  last of repeated keys wins and repeated groups merge;
- booleans are exactly ``true``/``1``/``false``/``0`` (trailing white space allowed): ``True``,
  ``yes`` and ``on`` are errors; integers are decimal ``strtol`` with nothing else but white
  space around, within ``int``; strings unescape ``\\s \\n \\t \\r \\\\`` and any other escape is
  an error, trailing white space is kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

INT_MIN, INT_MAX = -(2**31), 2**31 - 1


class KeyFileError(ValueError):
    """The whole file cannot be loaded (GLib's ``G_KEY_FILE_ERROR_PARSE`` and kin)."""


class ValueError_(ValueError):
    """A key's value cannot be read as the type asked for (``G_KEY_FILE_ERROR_INVALID_VALUE``)."""


@dataclass
class KeyFile:
    """Groups of keys, as loaded."""

    groups: dict[str, dict[str, str]] = field(default_factory=dict)

    def raw(self, group: str, key: str) -> str | None:
        """The raw value, or None when the group or key is absent."""
        return self.groups.get(group, {}).get(key)

    def keys(self, group: str) -> list[str]:
        return list(self.groups.get(group, {}))


_KEY_BAD = re.compile(r"[\[\]]")
_LOCALE_KEY = re.compile(r"^[^\[\]=]+\[[^\[\]]*\]$")


def parse(data: bytes) -> KeyFile:
    """Load a key file as GLib does; :class:`KeyFileError` with GLib's words on failure."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise KeyFileError(f"Key file contains invalid UTF-8 ({err.reason})") from None
    kf = KeyFile()
    group: dict[str, str] | None = None
    for raw_line in re.split(r"\n", text):
        line = raw_line[:-1] if raw_line.endswith("\r") else raw_line
        start = line.lstrip(" \t\n\r\f\v")
        if not start or start.startswith("#"):
            continue
        if start.startswith("["):
            close = start.find("]")
            if close > 0 and start[close + 1 :].strip(" \t") == "" and "[" not in start[1:close]:
                name = start[1:close]
                group = kf.groups.setdefault(name, {})
                continue
            raise KeyFileError(
                f"Key file contains line “{line}” which is not a key-value pair, group, or comment"
            )
        eq = start.find("=")
        if eq <= 0:
            raise KeyFileError(
                f"Key file contains line “{line}” which is not a key-value pair, group, or comment"
            )
        if group is None:
            raise KeyFileError("Key file does not start with a group")
        key = start[:eq].rstrip(" \t")
        if _KEY_BAD.search(key) and not _LOCALE_KEY.match(key):
            raise KeyFileError(f"Invalid key name: {key}")
        value = start[eq + 1 :].lstrip(" \t\n\r\f\v")
        group[key] = value
    return kf


def as_boolean(value: str) -> bool:
    """GLib's boolean: ``true``/``1``/``false``/``0`` exactly, trailing white space allowed."""
    word = value.rstrip(" \t\n\r\f\v")
    if word in ("true", "1"):
        return True
    if word in ("false", "0"):
        return False
    raise ValueError_(f"Value “{value}” cannot be interpreted as a boolean.")


def as_integer(value: str) -> int:
    """GLib's integer: decimal, optional sign, white space around, within C ``int``."""
    m = re.fullmatch(r"[ \t\n\r\f\v]*([+-]?[0-9]+)[ \t\n\r\f\v]*", value)
    if not m:
        raise ValueError_(f"Value “{value}” cannot be interpreted as a number.")
    number = int(m.group(1))
    if not INT_MIN <= number <= INT_MAX:
        raise ValueError_(f"Integer value “{value}” out of range")
    return number


_ESCAPES = {"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}


def as_string(value: str) -> str:
    """GLib's string: the escapes unescaped; any other escape is an error."""
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            nxt = value[i + 1] if i + 1 < len(value) else ""
            if nxt not in _ESCAPES:
                raise ValueError_(f"Key file contains escape character “\\{nxt}”")
            out.append(_ESCAPES[nxt])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)
