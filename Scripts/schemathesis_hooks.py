"""Rules of Strive's schema that JSON Schema cannot state, for the API fuzz run (Scripts/fuzz-api.sh).

/openapi.json states each column's own rules (types, lengths, ranges, patterns, lists). A CHECK that
relates two columns of a row cannot be said in JSON Schema, so schemathesis would generate rows that
break it and count the server's correct 400 as "valid data rejected". Just before each request (in
every phase) this hook brings a generated row inside those rules — swapping two values that are the
wrong way round, moving an equal end one second later, putting an attachment's file in its
organization's folder — and changes nothing else. Keep the table in step with the multi-column CHECK
constraints of the migrations.
"""

import re
import sys
from datetime import datetime, timedelta, timezone

import schemathesis

# Hypothesis describes strategies by parsing their source while deep in schemathesis's schema walk;
# with CPython's default limit that parse fails ("AST constructor recursion depth mismatch") on the
# larger row schemas. More headroom, not a change to what is generated.
sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))

# table -> [(left column, operator, right column)]: the CHECKs over two columns of a row.
CROSS_COLUMN_RULES = {
    "projects": [("start_date", "<=", "due_date")],
    "tasks": [("parent_task_id", "!=", "id")],
    "appointments": [("start_time", "<", "end_time")],
    "user_sessions": [("started_at", "<=", "ended_at")],
}


# Strive's one written form of a timestamp (TemporalText in the server, the pattern in /openapi.json).
_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[Tt ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,6}))?)?([Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?)?"
)
_LATEST = datetime.max.replace(tzinfo=timezone.utc)
_EARLIEST = datetime.min.replace(tzinfo=timezone.utc)


def _timestamp(text):
    """The instant a timestamp text names (no zone: UTC, the server's), or None if it is not one."""
    if text == "infinity":
        return _LATEST
    if text == "-infinity":
        return _EARLIEST
    match = _TIMESTAMP.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    offset = timezone.utc
    if zone and zone not in "Zz":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        offset = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0)))
    try:
        return datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
            int((fraction or "0").ljust(6, "0")), tzinfo=offset,
        )
    except ValueError:
        return None


def _mend(row, left, operator, right):
    a, b = row.get(left), row.get(right)
    if not isinstance(a, str) or not isinstance(b, str):
        return
    if operator == "!=":
        if a == b:
            row[left] = None
        return
    ta, tb = _timestamp(a), _timestamp(b)
    if ta is not None and tb is not None:
        if ta > tb:
            row[left], row[right] = b, a
            ta, tb = tb, ta
        if operator == "<" and ta == tb:
            # One second apart, whichever way stays representable (and infinities apart).
            if tb == _LATEST:
                row[left] = "-infinity"
            elif tb == _EARLIEST:
                row[right] = "infinity"
            else:
                try:
                    row[right] = (tb + timedelta(seconds=1)).isoformat()
                except OverflowError:
                    row[left] = (ta - timedelta(seconds=1)).isoformat()
    elif a > b:  # dates compare as text
        row[left], row[right] = b, a


def _rows(body):
    if isinstance(body, dict):
        return [body]
    if isinstance(body, list):
        return [row for row in body if isinstance(row, dict)]
    return []


@schemathesis.hook
def before_call(context, case, kwargs):
    path = case.operation.path
    if not path.startswith("/rest/v1/") or "/rpc/" in path:
        return
    table = path.rsplit("/", 1)[-1]
    for row in _rows(case.body):
        for left, operator, right in CROSS_COLUMN_RULES.get(table, []):
            _mend(row, left, operator, right)
        # A row inserted without its start gets now(): an end before now would break the rule.
        if table == "user_sessions" and "started_at" not in row and _timestamp(row.get("ended_at")) is not None:
            row["started_at"] = row["ended_at"]
        # An attachment's file lies in its organization's folder.
        path_value, organization = row.get("file_path"), row.get("organization_id")
        if table == "attachments" and isinstance(path_value, str) and 0 < len(path_value) <= 1024 and isinstance(organization, str):
            # Only a path the schema allows is mended, and it stays within the schema's 1024 characters.
            row["file_path"] = (organization + "/" + path_value.lstrip("/"))[:1024]
