"""Flows messages decoded a batch at a time: the worker's path, ``decode_flow``'s verdicts.

msgspec decodes each message into ``FastFlow``, a struct made from FlowRecord's
own fields: each number of its JSON type (no text or boolean for a number, no
fraction for an int) within FlowRecord's bounds, no unknown field, every
required one. The text fields are checked against the same field's pydantic
validator, its answer remembered per text; the start before the end and the
clock, for the whole batch at once in numpy. Every message that fails any of
that (or that msgspec cannot read at all) goes through ``decode_flow``, which
decides it as before and gives the reason, and accepts what pydantic's lax mode
takes (a number as text, say). So pydantic alone says what is valid and why
not; the fast path only recognises what it accepts unchanged, which
``test_batchdecode`` checks message by message on hypothesis-built batches.

Why: ``model_validate_json`` took 16 % of the worker's time in a py-spy profile
of ``linkcast bench stream``. On the bench's records, one core: 8.6 µs a
message through pydantic, 3.8 µs through ``decode_flows``.
"""

import functools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter, eq
from types import NoneType, UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import annotated_types
import msgspec
import numpy as np
from pydantic import TypeAdapter, ValidationError
from pydantic.types import AllowInfNan

from streams.decode import MAX_FUTURE_S, MAX_RECORD_BYTES, Rejection, decode_flow
from streams.schemas import FlowRecord


def _number_kind(annotation: Any) -> type | None:
    """int or float for a FlowRecord field that holds that number (or None), else None."""
    if get_origin(annotation) in (Union, UnionType):
        args = [a for a in get_args(annotation) if a is not NoneType]
        annotation = args[0] if len(args) == 1 else None
    return annotation if annotation in (int, float) else None


_BOUNDS = {
    annotated_types.Ge: "ge",
    annotated_types.Gt: "gt",
    annotated_types.Le: "le",
    annotated_types.Lt: "lt",
}


def _bounds(name: str, kind: type) -> dict[str, Any]:
    """A number field's bounds in FlowRecord, as ``msgspec.Meta`` takes them.

    Raises TypeError for a constraint the fast path does not know: it would accept
    what pydantic refuses. (No infinity or NaN is ever decoded: msgspec refuses a
    number out of a float's range, and JSON has no NaN.)
    """
    bounds = {}
    for constraint in FlowRecord.model_fields[name].metadata:
        if constraint == AllowInfNan(False):
            continue
        key = _BOUNDS.get(type(constraint))
        if key is None:
            raise TypeError(f"FlowRecord.{name} has {constraint!r}: teach streams.batchdecode")
        bounds[key] = kind(getattr(constraint, key))
    return bounds


def _fast_type(name: str, info: Any) -> Any:
    """The field's type in the fast path: a number within FlowRecord's bounds, or text."""
    kind = _number_kind(info.annotation)
    fast = str if kind is None else Annotated[kind, msgspec.Meta(**_bounds(name, kind))]
    return fast if info.is_required() else fast | None


_FIELDS = FlowRecord.model_fields
#: FlowRecord's number fields, in its order: the columns of ``Flows.numbers``.
NUMBER_FIELDS: tuple[str, ...] = tuple(n for n, i in _FIELDS.items() if _number_kind(i.annotation))
_TEXT_FIELDS = tuple(n for n in _FIELDS if n not in NUMBER_FIELDS)
#: A flow as the fast path decodes it: FlowRecord's fields and bounds, any text as text.
FastFlow = msgspec.defstruct(
    "FastFlow",
    [
        (n, _fast_type(n, i)) if i.is_required() else (n, _fast_type(n, i), None)
        for n, i in _FIELDS.items()
    ],
    forbid_unknown_fields=True,
    gc=False,  # no references to other objects of its own: the collector need not track it
)
_DECODER = msgspec.json.Decoder(FastFlow)
#: What the fast path checks beyond each field: FlowRecord's model validators.
CROSS_FIELD_CHECKS = frozenset({"_start_not_after_end"})
# Texts remembered per field at most, then afresh: more than the links one worker holds
# (at 65,536, bench stream over 100,000 links validated links again and again, 5 % of
# the worker's time in a py-spy profile); 262,144 link ids of 11 characters take 30 MiB.
_MAX_REMEMBERED = 1 << 18


class _Texts:
    """A text field's own pydantic validator, its answer remembered per text: a link's
    flows come from a few hosts, and the classes are seven."""

    def __init__(self, name: str) -> None:
        info = _FIELDS[name]
        self.name = name
        self.get = attrgetter(name)
        # the annotation is a type at run time; mypy sees a special form
        self.adapter: TypeAdapter[Any] = TypeAdapter(Annotated[info.annotation, info])  # type: ignore[arg-type]
        self.known: dict[str, Any] = {}  # text -> the value as FlowRecord's JSON writes it
        self.fine: set[str | None] = {None}  # valid texts in normal form, and None

    def normal(self, text: str) -> Any:
        """The text in its normal form (``2001:db8::1``), or None if the field refuses it."""
        known = self.known.get(text)
        if known is None:
            try:
                known = self.adapter.dump_python(self.adapter.validate_python(text), mode="json")
            except ValidationError:
                return None
            if len(self.known) >= _MAX_REMEMBERED:
                self.known.clear()
                self.fine = {None}
            self.known[text] = known
            if known == text:
                self.fine.add(text)
        return known

    def check(self, flows: list[Any], ok: list[bool]) -> None:
        """Check the field in every flow, putting texts in normal form; a flow with an
        invalid one gets False in ``ok``."""
        column = list(map(self.get, flows))
        if set(column) <= self.fine:
            return  # all valid and in normal form already: the usual case
        for k, text in enumerate(column):
            if text is None:
                continue
            normal = self.normal(text)
            if normal is None:
                ok[k] = False
            elif normal != text:
                setattr(flows[k], self.name, normal)


_TEXTS = [_Texts(name) for name in _TEXT_FIELDS]


@dataclass(slots=True)
class Flows:
    """A batch of flows messages decoded: the valid ones and why the others are not."""

    positions: list[int]  # each valid flow's place in the batch, in order
    records: list[Any]  # each valid flow: a FastFlow, FlowRecord's fields with text as text
    columns: tuple[str, ...]  # the number fields in ``numbers``
    numbers: np.ndarray  # (flows, len(columns)) float64, NaN where a flow has none
    rejected: list[tuple[int, Rejection]]  # (place in the batch, why), in order

    def column(self, name: str) -> np.ndarray:
        return self.numbers[:, self.columns.index(name)]


@functools.cache
def _numbers_getter(columns: tuple[str, ...]) -> Any:
    """flow -> the values of ``columns``, as a tuple."""
    if not {"ts", "start"} <= set(columns) <= set(NUMBER_FIELDS):
        raise ValueError(f"columns must be number fields with ts and start, got {columns}")
    return attrgetter(*columns)


def decode_flows(
    messages: Sequence[tuple[bytes | None, bytes | None]],
    *,
    columns: tuple[str, ...] = NUMBER_FIELDS,
    now_s: float | None = None,
    max_future_s: float = MAX_FUTURE_S,
) -> Flows:
    """``decode_flow`` for a batch of (key, value) messages (see the module's docstring),
    with the number fields in ``columns`` (those a caller needs: each costs about 45 ns a
    flow to gather)."""
    numbers_of = _numbers_getter(columns)
    ts, start = columns.index("ts"), columns.index("start")
    now_s = time.time() if now_s is None else now_s
    decode = _DECODER.decode
    decoded: list[Any] = [None] * len(messages)  # a FastFlow, or None: for pydantic
    for i, (_, value) in enumerate(messages):
        if value is not None and len(value) <= MAX_RECORD_BYTES:
            try:
                decoded[i] = decode(value)
            except Exception:  # DecodeError; UnicodeDecodeError for a bad byte in a string
                decoded[i] = None  # whatever it is, pydantic says why
    fast = [i for i, flow in enumerate(decoded) if flow is not None]
    flows = [decoded[i] for i in fast]
    ok = [True] * len(flows)
    for texts in _TEXTS:
        texts.check(flows, ok)
    keys = [messages[i][0] for i in fast]
    links = [flow.link for flow in flows]
    if not all(map(eq, keys, map(str.encode, links))):
        ok = [o and k == link.encode() for o, k, link in zip(ok, keys, links, strict=True)]
    numbers = np.full((len(messages), len(columns)), np.nan)
    if fast:
        # through an object array: None (a field not given) becomes NaN in one ``astype``,
        # where ``np.array(..., dtype=float64)`` converts value by value (0.73 against
        # 1.63 us a flow for the classifier's 21 columns, the simulator's flows)
        rows = np.array(list(map(numbers_of, flows)), dtype=object)
        numbers[fast] = rows.astype(np.float64)
        x = numbers[fast]
        bad = x[:, start] > x[:, ts]  # FlowRecord._start_not_after_end
        bad |= x[:, ts] > now_s + max_future_s
        for k in np.flatnonzero(bad).tolist():
            ok[k] = False
    for i, fine in zip(fast, ok, strict=True):
        if not fine:
            decoded[i] = None
    rejected = []
    for i, flow in enumerate(decoded):
        if flow is not None:
            continue
        key, value = messages[i]
        verdict = decode_flow(key, value, now_s=now_s, max_future_s=max_future_s)
        if isinstance(verdict, Rejection):
            rejected.append((i, verdict))
            continue
        decoded[i] = FastFlow(**verdict.model_dump(mode="json"))
        numbers[i] = [_number(getattr(verdict, name)) for name in columns]
    positions = [i for i, flow in enumerate(decoded) if flow is not None]
    valid = [flow for flow in decoded if flow is not None]
    return Flows(positions, valid, columns, numbers[positions], rejected)


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)
