"""Streaming readers of the three log formats ``permgen usage`` reads.

Every reader is a generator over the lines of a file (``.gz`` read as gzip), one
:class:`Entry` per request, in constant memory. A line longer than :data:`MAX_LINE` bytes,
or one that does not have the format's shape, is skipped and counted in :class:`Stats`
(never guessed at).

- OSS built-in logging (the files OSS writes into a target bucket): space-separated fields,
  some in double quotes, the time in brackets; the field order is the vendor's (see
  docs/commands/usage.md). ``-`` stands for an absent value.
- Simple Log Service exports of ``oss_access_log``: one JSON object per line.
- ActionTrail events: one JSON event per line, or a JSON array / ``{"events": [...]}``
  document, or SLS exports whose ``event`` field holds the event (as an object or a string).
"""

from __future__ import annotations

import calendar
import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal, cast
from urllib.parse import unquote

from permgen.errors import InputError

#: Longest line read, in bytes; longer ones are skipped and counted.
MAX_LINE = 64 * 1024
#: An ActionTrail file read as one JSON document (an array) may be at most this large.
MAX_DOCUMENT = 64 * 1024 * 1024

Format = Literal["oss", "sls", "actiontrail"]
FORMATS: tuple[Format, ...] = ("oss", "sls", "actiontrail")


@dataclass(slots=True)
class Entry:
    """One request as a log shows it (strings as logged, ``""`` for absent values)."""

    time: int  # seconds since the epoch (UTC)
    source: Format
    access_key: str = ""
    requester: str = ""  # the requester's account or user id; "" when anonymous
    principal: str = ""  # "user:NAME" / "role:NAME" when the log names it (ActionTrail)
    ip: str = ""
    vpc: str = ""
    tls: bool | None = None  # None: the log does not say
    method: str = ""
    path: str = ""  # the request path, URL-encoded as logged (without the query)
    query: str = ""
    operation: str = ""  # the API name the log gives
    bucket: str = ""
    key: str = ""  # decoded object key
    owner: str = ""  # the bucket owner's account id
    status: int = 0
    service: str = "oss"  # "oss", "ram", "sts" (ActionTrail)
    params: dict[str, Any] = field(default_factory=dict)  # ActionTrail request parameters
    response: dict[str, Any] = field(default_factory=dict)  # ActionTrail response elements


@dataclass
class Stats:
    lines: int = 0
    entries: int = 0
    too_long: int = 0
    malformed: int = 0
    first_bad: str = ""  # "file:line: why" of the first skipped line

    def bad(self, where: str, why: str, *, too_long: bool = False) -> None:
        if too_long:
            self.too_long += 1
        else:
            self.malformed += 1
        if not self.first_bad:
            self.first_bad = f"{where}: {why}"

    def merge(self, other: Stats) -> None:
        self.lines += other.lines
        self.entries += other.entries
        self.too_long += other.too_long
        self.malformed += other.malformed
        self.first_bad = self.first_bad or other.first_bad


def open_text(path: str | Path) -> IO[bytes]:
    """The file's bytes (gunzipped when it starts with the gzip magic)."""
    try:
        raw = open(path, "rb")  # noqa: SIM115 - the caller closes it
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if raw.peek(2)[:2] == b"\x1f\x8b":
        raw.close()
        return cast(IO[bytes], gzip.open(path, "rb"))
    return raw


def _lines(fh: IO[bytes], where: str, stats: Stats) -> Iterator[tuple[int, str]]:
    """(line number, text) of each line, skipping over-long ones (read in bounded pieces)."""
    number = 0
    while True:
        line = fh.readline(MAX_LINE + 1)
        if not line:
            return
        number += 1
        stats.lines += 1
        if len(line) > MAX_LINE and not line.endswith(b"\n"):
            # the rest of this line: read on in bounded pieces
            while True:
                more = fh.readline(MAX_LINE + 1)
                if not more or more.endswith(b"\n"):
                    break
            stats.bad(f"{where}:{number}", f"line longer than {MAX_LINE} bytes", too_long=True)
            continue
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        if text.strip():
            yield number, text


# --------------------------------------------------------------------------- time

_MONTHS = {m: i for i, m in enumerate(calendar.month_abbr) if m}


_DAYS: dict[str, int] = {}  # "03/Jan/2021 +0800" -> epoch of that day's midnight


def parse_clf_time(text: str) -> int:
    """``03/Jan/2021:14:59:49 +0800`` (or without the zone: UTC) -> epoch seconds."""
    day = text[:11] + text[20:]
    base = _DAYS.get(day)
    clock = text[12:20]
    if base is not None and text[11:12] == ":" and len(clock) == 8 and clock[2] == clock[5] == ":":
        try:
            return base + int(clock[0:2]) * 3600 + int(clock[3:5]) * 60 + int(clock[6:8])
        except ValueError:
            pass
    t = _parse_clf_time(text)
    if len(_DAYS) > 4096:
        _DAYS.clear()
    _DAYS[day] = t - (int(clock[0:2]) * 3600 + int(clock[3:5]) * 60 + int(clock[6:8]))
    return t


def _parse_clf_time(text: str) -> int:
    try:
        day, month, rest = text[0:2], text[3:6], text[7:]
        year, hour, minute, second = (
            int(rest[0:4]),
            int(rest[5:7]),
            int(rest[8:10]),
            int(rest[11:13]),
        )
        t = calendar.timegm((year, _MONTHS[month], int(day), hour, minute, second, 0, 0, 0))
        zone = rest[14:].strip()
        if zone:
            sign = -1 if zone[0] == "-" else 1
            t -= sign * (int(zone[1:3]) * 3600 + int(zone[3:5]) * 60)
        return t
    except (KeyError, ValueError, IndexError):
        raise ValueError(f"time {text!r} is not dd/Mon/yyyy:hh:mm:ss [+zzzz]") from None


def parse_iso_time(text: str) -> int:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"time {text!r} is not an ISO 8601 time") from None
    if value.tzinfo is None:
        return calendar.timegm(value.timetuple())
    return int(value.timestamp())


# --------------------------------------------------------------------------- OSS built-in

#: RemoteIP Reserved Reserved [Time] "RequestURL" HTTPStatus SentBytes RequestTime "Referer"
#: "UserAgent" "HostName" "RequestID" "LoggingFlag" "RequesterAliyunID" "Operation"
#: "BucketName" "ObjectName" ObjectSize ServerCostTime "ErrorCode" RequestLength "UserID"
#: DeltaDataSize "SyncRequest" "StorageClass" "TargetStorageClass"
#: "TransmissionAccelerationAccessPoint" "AccessKeyID" "BucketARN" (later fields ignored;
#: older files end earlier and lack the AccessKeyID).
_Q = r'"([^"\\]*(?:\\.[^"\\]*)*)"'  # a quoted field; \" and \\ inside
_OSS_LINE = re.compile(
    r"(\S+) \S+ \S+ \[([^\]]*)\] "
    + _Q  # request line
    + r" (\S+) \S+ \S+ "
    + _Q  # referer
    + " "
    + _Q  # user agent
    + " "
    + _Q  # host
    + " "
    + _Q  # request id
    + " "
    + _Q  # logging flag
    + " "
    + _Q  # requester id
    + " "
    + _Q  # operation
    + " "
    + _Q  # bucket
    + " "
    + _Q  # object
    + r" \S+ \S+ "
    + _Q  # error code
    + r" \S+ "
    + _Q  # user id (bucket owner)
    + r"(?: \S+ "
    + _Q  # delta, sync request
    + " "
    + _Q  # storage class
    + " "
    + _Q  # target storage class
    + " "
    + _Q  # acceleration point
    + " "
    + _Q  # access key id
    + r")?"
)
_UNESCAPE = re.compile(r"\\(.)")


def _decode(text: str) -> str:
    return unquote(text) if "%" in text else text


def _field(value: str | None) -> str:
    if value is None or value == "-":
        return ""
    return _UNESCAPE.sub(r"\1", value) if "\\" in value else value


def _split_target(target: str) -> tuple[str, str]:
    path, _, query = target.partition("?")
    return path, query


def _bucket_key_from_path(path: str, host: str) -> tuple[str, str]:
    """Bucket and decoded key from a path-style or virtual-host-style request."""
    hostname = host.split(":", 1)[0].lower()
    rest = path[1:] if path.startswith("/") else path
    labels = hostname.split(".")
    if len(labels) > 3 and labels[1].startswith("oss-"):
        return labels[0], _decode(rest)  # bucket.oss-region.aliyuncs.com
    bucket, _, key = rest.partition("/")
    return _decode(bucket), _decode(key)


def parse_oss_line(text: str) -> Entry:
    """One line of OSS built-in logging; ValueError when it does not have the shape."""
    m = _OSS_LINE.match(text)
    if m is None:
        raise ValueError('not an OSS access log line (RemoteIP - - [Time] "Request" ...)')
    g = m.groups()
    request = _field(g[2])
    parts = request.split(" ")
    if len(parts) < 2:
        raise ValueError(f"request {request!r} is not 'METHOD /path HTTP/x'")
    method, target = parts[0], parts[1]
    path, query = _split_target(target)
    bucket, key = _field(g[11]), _field(g[12])
    host = _field(g[6])
    if not bucket:
        bucket, key_from_path = _bucket_key_from_path(path, host)
        key = key or key_from_path
    else:
        # ObjectName is logged URL-encoded
        key = _decode(key)
    try:
        status = int(g[3])
    except ValueError:
        raise ValueError(f"HTTP status {g[3]!r} is not a number") from None
    return Entry(
        time=parse_clf_time(g[1]),
        source="oss",
        access_key=_field(g[19]),
        requester=_field(g[9]),
        ip=_field(g[0]),
        tls=None,
        method=method.upper(),
        path=path,
        query=query,
        operation=_field(g[10]),
        bucket=bucket,
        key=key,
        owner=_field(g[14]),
        status=status,
    )


# --------------------------------------------------------------------------- SLS


def _text(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    return "" if text == "-" else text


def parse_sls_record(obj: Any) -> Entry:
    """One ``oss_access_log`` record of a Simple Log Service export (a JSON object)."""
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    topic = obj.get("__topic__")
    if topic not in (None, "oss_access_log"):
        raise ValueError(f"__topic__ is {topic!r}, not oss_access_log")
    if "__time__" in obj:
        try:
            t = int(obj["__time__"])
        except (TypeError, ValueError):
            raise ValueError("__time__ is not a number") from None
    elif "time" in obj:
        t = parse_clf_time(_text(obj["time"]))
    else:
        raise ValueError("no __time__ or time field")
    uri = _text(obj.get("request_uri"))
    path, query = _split_target(uri)
    http_type = _text(obj.get("http_type")).lower()
    bucket = _text(obj.get("bucket"))
    key = _decode(_text(obj.get("object")))
    if not bucket:
        bucket, key_from_path = _bucket_key_from_path(path, _text(obj.get("host")))
        key = key or key_from_path
    try:
        status = int(obj.get("http_status") or 0)
    except (TypeError, ValueError):
        raise ValueError("http_status is not a number") from None
    return Entry(
        time=t,
        source="sls",
        access_key=_text(obj.get("access_id")),
        requester=_text(obj.get("requester_id")),
        ip=_text(obj.get("client_ip")),
        vpc=_text(obj.get("vpc_id")),
        tls=(http_type == "https") if http_type else None,
        method=_text(obj.get("http_method")).upper(),
        path=path,
        query=query,
        operation=_text(obj.get("operation")),
        bucket=bucket,
        key=key,
        owner=_text(obj.get("owner_id")),
        status=status,
    )


# --------------------------------------------------------------------------- ActionTrail

_ASSUMED = re.compile(r"acs:ram::[^:]*:assumed-role/([^/]+)/", re.I)


def parse_actiontrail_event(obj: Any) -> Entry:
    """One ActionTrail event (or an SLS record whose ``event`` holds it)."""
    if isinstance(obj, dict) and "event" in obj and "eventName" not in obj:
        inner = obj["event"]
        obj = json.loads(inner) if isinstance(inner, str) else inner
    if not isinstance(obj, dict) or "eventName" not in obj:
        raise ValueError("not an ActionTrail event (no eventName)")
    identity = obj.get("userIdentity") or {}
    if not isinstance(identity, dict):
        raise ValueError("userIdentity is not an object")
    kind = _text(identity.get("type"))
    principal = ""
    if kind == "ram-user" and identity.get("userName"):
        principal = f"user:{identity['userName']}"
    elif kind == "assumed-role":
        m = _ASSUMED.match(_text(identity.get("arn")))
        if m:
            principal = f"role:{m.group(1)}"
    source = _text(obj.get("eventSource")).lower()
    service = _text(obj.get("serviceName")).lower() or source.split(".", 1)[0]
    params = obj.get("requestParameters") or {}
    response = obj.get("responseElements") or {}
    error = _text(obj.get("errorCode"))
    return Entry(
        time=parse_iso_time(_text(obj.get("eventTime"))) if obj.get("eventTime") else 0,
        source="actiontrail",
        access_key=_text(identity.get("accessKeyId")),
        requester=_text(identity.get("principalId")),
        principal=principal,
        ip=_text(obj.get("sourceIpAddress")),
        operation=_text(obj.get("eventName")),
        bucket=_text(params.get("BucketName") or params.get("bucketName"))
        if isinstance(params, dict)
        else "",
        owner=_text(obj.get("recipientAccountId") or identity.get("accountId")),
        status=400 if error else 200,
        service=service,
        params=params if isinstance(params, dict) else {},
        response=response if isinstance(response, dict) else {},
    )


# --------------------------------------------------------------------------- files


def detect(first_line: str) -> Format:
    """Which format a file is in, from its first non-blank line."""
    s = first_line.lstrip()
    if s.startswith("["):
        return "actiontrail"
    if s.startswith("{"):
        if '"eventName"' in s or '"actiontrail' in s or '"event"' in s:
            return "actiontrail"
        return "sls"
    return "oss"


def sniff(path: str | Path) -> tuple[Format, bool]:
    """The format of a file from its first non-blank line, and whether it is a JSON array."""
    with open_text(path) as fh:
        head = fh.read(4096)
    text = head.decode("utf-8", "replace")
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    return detect(first), text.lstrip().startswith("[")


def read_entries(path: str | Path, stats: Stats, fmt: Format | None = None) -> Iterator[Entry]:
    """Every request of one log file, streamed; bad lines skipped and counted in ``stats``."""
    where = str(path)
    sniffed, array = sniff(path)
    fmt = fmt or sniffed
    with open_text(path) as fh:
        if fmt == "actiontrail" and array:
            yield from _actiontrail_document(fh, where, stats)
            return
        for number, text in _lines(fh, where, stats):
            try:
                if fmt == "oss":
                    entry = parse_oss_line(text)
                else:
                    obj = json.loads(text)
                    if fmt == "sls":
                        entry = parse_sls_record(obj)
                    elif isinstance(obj, dict) and isinstance(obj.get("events"), list):
                        for event in obj["events"]:
                            stats.entries += 1
                            yield parse_actiontrail_event(event)
                        continue
                    else:
                        entry = parse_actiontrail_event(obj)
            except (ValueError, RecursionError) as exc:
                stats.bad(f"{where}:{number}", str(exc))
                continue
            stats.entries += 1
            yield entry


def _actiontrail_document(fh: IO[bytes], where: str, stats: Stats) -> Iterator[Entry]:
    data = fh.read(MAX_DOCUMENT + 1)
    if len(data) > MAX_DOCUMENT:
        raise InputError(
            f"{where}: a JSON array of events larger than {MAX_DOCUMENT} bytes; "
            "export one event per line instead"
        )
    stats.lines += data.count(b"\n") + 1
    try:
        events = json.loads(data)
    except ValueError as exc:
        raise InputError(f"{where}: not valid JSON: {exc}") from None
    for n, event in enumerate(events):
        try:
            entry = parse_actiontrail_event(event)
        except ValueError as exc:
            stats.bad(f"{where}: event {n}", str(exc))
            continue
        stats.entries += 1
        yield entry
