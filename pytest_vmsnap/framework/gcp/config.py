"""The guest agent's config: ``[Snapshots]`` of ``/etc/default/instance_configs.cfg``.

Read as the agent reads it (GoogleCloudPlatform/guest-agent ``google_guest_agent/cfg/cfg.go``,
``Load`` and ``defaultDataSources``): the built-in defaults first, then
``instance_configs.cfg``, ``instance_configs.cfg.distro`` and ``instance_configs.cfg.template``,
all through ``gopkg.in/ini.v1`` with ``Loose`` (a missing file is skipped) and ``Insensitive``
(section and key names in any case). A later source's value replaces an earlier one's
(go-ini ``Section.NewKey`` overwrites), so ``.distro`` and ``.template`` win over the user's
file, although the agent's README says ``.distro`` "will not override" it: the code decides.

Values are then mapped onto typed fields (``cfg.Snapshots``: ``Enabled bool``,
``TimeoutInSeconds int``) by go-ini's non-strict ``MapTo``, which drops a value it cannot parse
and leaves the field at Go's zero value (go-ini ``struct.go`` ``setWithProperType`` /
``wrapStrictError``): ``enabled = yes please`` is false, ``timeout_in_seconds = 60s`` is 0,
and not the defaults. A parse error of the file itself (a line with no ``=`` or ``:``, an
unclosed ``[``) fails ``Load``: the agent prints "Failed to load configuration" and exits
(``main.go``). go-ini rules cited below are from go-ini/ini ``parser.go`` and ``key.go``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

CONFIG_PATH = "/etc/default/instance_configs.cfg"
"""``unixConfigPath`` in ``cfg.go``."""
SOURCES = (CONFIG_PATH, CONFIG_PATH + ".distro", CONFIG_PATH + ".template")
"""The files ``defaultDataSources`` adds after the built-in defaults, in order: the last
value read wins."""
SECTION = "snapshots"

DEFAULTS: dict[str, str] = {
    "enabled": "false",
    "snapshot_service_ip": "169.254.169.254",
    "snapshot_service_port": "8081",
    "timeout_in_seconds": "60",
}
"""``[Snapshots]`` of ``defaultConfig`` in ``cfg.go``."""
DEFAULT_TIMEOUT_S = 60

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_NS_PER_S = 1_000_000_000


class ConfigError(Exception):
    """The config does not load: the agent's own words (``main.go`` + ``cfg.Load``)."""


@dataclass(frozen=True)
class Value:
    """One ``[Snapshots]`` key as the agent ends up with it."""

    raw: str
    """The text go-ini kept for it (after comments and quotes are stripped)."""
    source: str
    """The file it came from (``CONFIG_PATH`` ...), or ``"built-in default"``."""


@dataclass(frozen=True)
class SnapshotsConfig:
    """``cfg.Snapshots`` after ``Load``, with where each value came from."""

    enabled: bool
    timeout_in_seconds: int
    """The int field (0 when the text did not parse as Go's ``strconv.ParseInt`` base 0)."""
    values: dict[str, Value] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()
    """Values MapTo dropped (the field kept Go's zero value), each as one sentence."""
    read: tuple[str, ...] = ()
    """The config files that existed and were read, in order."""

    @property
    def timeout_ns(self) -> int:
        """``time.Duration(timeoutInSeconds) * time.Second`` as Go computes it: int64, so a
        huge value wraps around (``snapshot_listener.go`` ``startSnapshotListener``)."""
        return _wrap_int64(self.timeout_in_seconds * _NS_PER_S)

    @property
    def timeout_s(self) -> float:
        """:attr:`timeout_ns` in seconds; 0 or less means every script's deadline has passed
        before it starts (``context.WithTimeout`` with a non-positive duration)."""
        return self.timeout_ns / _NS_PER_S

    def source(self, key: str) -> str:
        return self.values[key].source if key in self.values else "built-in default"


def load(root: Path | str) -> SnapshotsConfig:
    """Load ``[Snapshots]`` from the machine whose ``/`` is ``root`` (see the module doc).

    Raises :class:`ConfigError` with the agent's message when ``Load`` would fail.
    """
    root = Path(root)
    merged: dict[str, Value] = {k: Value(v, "built-in default") for k, v in DEFAULTS.items()}
    read: list[str] = []
    for location in SOURCES:
        path = root / location.lstrip("/")
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue  # Loose: a file that does not exist is skipped (also a dangling link)
        except IsADirectoryError:
            raise ConfigError(_agent_words(f"read {location}: is a directory")) from None
        except OSError as err:
            raise ConfigError(_agent_words(f"open {location}: {_go_errno(err)}")) from None
        try:
            sections = parse_ini(data)
        except IniError as err:
            raise ConfigError(_agent_words(str(err))) from None
        read.append(location)
        for key, raw in sections.get(SECTION, {}).items():
            merged[key] = Value(raw, location)
    return _map(merged, tuple(read))


def _map(values: dict[str, Value], read: tuple[str, ...]) -> SnapshotsConfig:
    """go-ini's non-strict ``MapTo`` onto ``cfg.Snapshots``: a value that does not parse leaves
    the field at its zero value (false, 0)."""
    ignored = []
    enabled_v, timeout_v = values["enabled"], values["timeout_in_seconds"]
    enabled = go_parse_bool(enabled_v.raw)
    if enabled is None:
        ignored.append(
            f"enabled = {enabled_v.raw!r} ({enabled_v.source}) is not a boolean Go's ini reader "
            "accepts (true/false, yes/no, on/off, 1/0, t/f, y/n): the agent reads it as false"
        )
    timeout = go_parse_int(timeout_v.raw)
    if timeout is None:
        ignored.append(
            f"timeout_in_seconds = {timeout_v.raw!r} ({timeout_v.source}) is not an integer "
            "Go's strconv.ParseInt accepts: the agent reads it as 0, so every script's deadline "
            "has passed before it starts"
        )
    return SnapshotsConfig(
        enabled=bool(enabled),
        timeout_in_seconds=timeout or 0,
        values=values,
        ignored=tuple(ignored),
        read=read,
    )


def _agent_words(err: str) -> str:
    # main.go: fmt.Fprintf(os.Stderr, "Failed to load configuration: %+v", err), where err is
    # cfg.Load's fmt.Errorf("failed to load configuration: %+v", err).
    return f"Failed to load configuration: failed to load configuration: {err.rstrip()}"


def _go_errno(err: OSError) -> str:
    """An errno as Go's syscall package words it (lower case: "permission denied")."""
    return (err.strerror or str(err)).lower()


# --- go-ini's parser, for the subset of options the agent uses -------------------------------


class IniError(Exception):
    """A parse error, worded as go-ini words it."""


def parse_ini(data: bytes) -> dict[str, dict[str, str]]:
    """Sections (lower case) to keys (lower case) to values, as go-ini ``File.parse`` reads
    ``data`` with the agent's options (``Insensitive``; defaults otherwise: delimiters ``=`` and
    ``:``, inline comments after ``#`` or ``;``, ``\\`` continuation lines, a value in ``\"\"\"``
    or backticks may span lines, surrounding quotes stripped). The last value of a key wins.
    """
    if data.startswith(b"\xef\xbb\xbf"):  # parser.BOM: a UTF-8 byte order mark is skipped
        data = data[3:]
    text = data.decode("utf-8", "surrogateescape")
    lines = text.splitlines(keepends=True)
    reader = _Lines(lines)
    sections: dict[str, dict[str, str]] = {"default": {}}
    current = sections["default"]
    while not reader.eof:
        raw = reader.next()
        line = raw.lstrip()
        if not line or line[0] in "#;":
            continue
        if line[0] == "[":
            close = line.rfind("]")
            if close == -1:
                raise IniError(f"unclosed section: {line}")
            name = line[1:close]  # not trimmed: "[ Snapshots ]" is another section
            if not name:
                raise IniError("empty section name")
            if name != "DEFAULT":
                name = name.lower()
            current = sections.setdefault(name, {})
            continue
        key, offset = _key_name(line)
        current[key.lower()] = _value(line[offset:], reader)
    return sections


class _Lines:
    def __init__(self, lines: list[str]) -> None:
        self.lines, self.i = lines, 0

    @property
    def eof(self) -> bool:
        return self.i >= len(self.lines)

    def next(self) -> str:
        line = self.lines[self.i] if not self.eof else ""
        self.i += 1
        return line


def _key_name(line: str) -> tuple[str, int]:
    """go-ini ``readKeyName`` with delimiters ``=:``: the key and where its value starts."""
    quote = ""
    if line.startswith('"'):
        quote = '"""' if len(line) > 6 and line.startswith('"""') else '"'
    elif line.startswith("`"):
        quote = "`"
    if quote:
        start = len(quote)
        pos = line.find(quote, start)
        if pos == -1:
            raise IniError(f"missing closing key quote: {line}")
        rest = re.search("[=:]", line[pos + start :])
        if rest is None:
            raise IniError(f"key-value delimiter not found: {line}")
        end = pos + rest.start()
        return line[start:pos].strip(), end + start + 1
    match = re.search("[=:]", line)
    if match is None:
        raise IniError(f"key-value delimiter not found: {line}")
    if match.start() == 0:
        raise IniError(f"empty key name: {line}")
    return line[: match.start()].strip(), match.start() + 1


def _value(text: str, reader: _Lines) -> str:
    """go-ini ``readValue`` (and its multi-line and continuation readers)."""
    line = text.lstrip()
    if not line:
        return ""
    quote = '"""' if len(line) > 3 and line.startswith('"""') else ("`" if line[0] == "`" else "")
    if quote:
        start = len(quote)
        pos = line[start:].rfind(quote)
        if pos != -1:
            return line[start : start + pos]
        value = line[start:]
        while True:
            at_end = reader.i >= len(reader.lines) - 1
            nxt = reader.next()
            pos = nxt.rfind(quote)
            if pos > -1:
                return value + nxt[:pos]
            value += nxt
            if at_end:
                raise IniError(f"missing closing key quote from {line!r} to {nxt!r}")
    line = line.strip()
    if line.endswith("\\"):  # a continuation line: joined trimmed, no comment stripping
        value = line[:-1]
        while True:
            nxt = reader.next().strip()
            if not nxt:
                return value
            value += nxt
            if not value.endswith("\\"):
                return value
            value = value[:-1]
    cut = min((i for i in (line.find("#"), line.find(";")) if i != -1), default=-1)
    if cut > -1:
        line = line[:cut].strip()
    for q in "'\"":
        if len(line) >= 2 and line[0] == q and line[-1] == q and line[1:].find(q) == len(line) - 2:
            return line[1:-1]
    return line


# --- Go's value parsers ------------------------------------------------------------------------

_TRUE = {"1", "t", "T", "true", "TRUE", "True", "YES", "yes", "Yes", "y", "ON", "on", "On"}
_FALSE = {"0", "f", "F", "false", "FALSE", "False", "NO", "no", "No", "n", "OFF", "off", "Off"}


def go_parse_bool(text: str) -> bool | None:
    """go-ini ``parseBool`` (key.go): None when it is none of its words (exact case)."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def go_parse_int(text: str) -> int | None:
    """Go's ``strconv.ParseInt(text, 0, 64)`` (go-ini ``Key.Int64``): a sign, then decimal,
    ``0x`` hex, ``0b`` binary, ``0o`` or a leading ``0`` octal, underscores between digits;
    None on a syntax error or outside int64."""
    s = text
    if not s:
        return None
    sign = 1
    if s[0] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    base, digits, prefixed = 10, s, False
    if s.startswith("0") and len(s) > 1:
        if len(s) >= 3 and s[1] in "xXbBoO":
            base = {"x": 16, "b": 2, "o": 8}[s[1].lower()]
            digits, prefixed = s[2:], True
        else:
            base, digits, prefixed = 8, s[1:], True  # the leading 0 counts as a prefix
    if not digits or not _underscores_ok(digits, prefixed):
        return None
    digits = digits.replace("_", "")
    if not digits:
        return None
    try:
        value = sign * int(digits, base)
    except ValueError:
        return None
    if not _INT64_MIN <= value <= _INT64_MAX:
        return None
    return value


def _underscores_ok(digits: str, prefixed: bool) -> bool:
    """Go's ``underscoreOK``: an underscore only between digits, or right after a base prefix."""
    if "_" not in digits:
        return True
    if digits.endswith("_") or "__" in digits:
        return False
    return prefixed or not digits.startswith("_")


def _wrap_int64(value: int) -> int:
    return (value - _INT64_MIN) % (1 << 64) + _INT64_MIN
