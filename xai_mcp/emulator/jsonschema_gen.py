"""Make one deterministic JSON value that satisfies a JSON Schema.

The emulated chat model uses it for structured output (`response_format` JSON_SCHEMA) and for
the arguments of client-side function calls. It covers the parts of JSON Schema that tool and
output schemas use in practice: types (also as lists), `properties`/`required`,
`additionalProperties`, `items`/`prefixItems`/`minItems`/`maxItems`/`uniqueItems`, `enum`,
`const`, string `minLength`/`maxLength`/`format`, numeric bounds and `multipleOf`, local `$ref`
(`#/$defs/...`, `#/definitions/...`, any `#/...` pointer), `anyOf`/`oneOf` (first branch) and
`allOf` (merged). It is not a validator: keywords it does not know (`pattern`, `not`, ...)
are ignored, so a schema relying on them may get a value that fails it.
"""

from __future__ import annotations

import math
from typing import Any

# Past this depth of $ref / nesting, objects keep only required properties and arrays only
# their minimum length, so a recursive schema still yields a finite value.
_MAX_DEPTH = 12

_FORMATS: dict[str, str] = {
    "date": "2025-01-01",
    "date-time": "2025-01-01T00:00:00Z",
    "time": "00:00:00Z",
    "email": "user@example.com",
    "idn-email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "iri": "https://example.com/",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "duration": "P1D",
}


class SchemaError(ValueError):
    """The schema cannot be used (for example a `$ref` that points nowhere)."""


def generate(schema: Any, *, text: str = "example") -> Any:
    """A value that satisfies `schema`; `text` seeds free-form strings so output is recognisable."""
    return _Generator(schema, text).value(schema, depth=0, variant=0, name="")


class _Generator:
    def __init__(self, root: Any, text: str) -> None:
        self.root = root
        self.text = text or "example"

    def resolve(self, ref: str) -> Any:
        if not ref.startswith("#"):
            raise SchemaError(f"only local $ref values are supported, got {ref!r}")
        node = self.root
        for raw in ref[1:].split("/")[1:] if ref != "#" else []:
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise SchemaError(f"$ref {ref!r} does not resolve")
        return node

    def value(self, schema: Any, *, depth: int, variant: int, name: str) -> Any:
        if schema is True or schema is None or schema == {}:
            return self._string({}, variant, name)
        if schema is False or not isinstance(schema, dict):
            return None  # nothing satisfies `false`; None is the least surprising answer
        if depth > 2 * _MAX_DEPTH:
            return None
        if "$ref" in schema:
            target = self.resolve(str(schema["$ref"]))
            # Sibling keywords next to $ref (allowed since 2019-09) refine the target.
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            merged = _merge([target, siblings]) if siblings and isinstance(target, dict) else target
            return self.value(merged, depth=depth + 1, variant=variant, name=name)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            options = schema["enum"]
            return options[variant % len(options)]
        for key in ("anyOf", "oneOf"):
            branches = schema.get(key)
            if isinstance(branches, list) and branches:
                rest = {k: v for k, v in schema.items() if k != key}
                first = branches[0]
                merged = _merge([rest, first]) if rest and isinstance(first, dict) else first
                return self.value(merged, depth=depth + 1, variant=variant, name=name)
        if isinstance(schema.get("allOf"), list):
            rest = {k: v for k, v in schema.items() if k != "allOf"}
            parts = [self._deref(p) for p in schema["allOf"]]
            return self.value(_merge([rest, *parts]), depth=depth + 1, variant=variant, name=name)

        kind = _pick_type(schema)
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, depth, name)
        if kind == "integer":
            return self._integer(schema, variant)
        if kind == "number":
            return self._number(schema, variant)
        if kind == "boolean":
            return variant % 2 == 0
        if kind == "null":
            return None
        return self._string(schema, variant, name)

    def _deref(self, part: Any) -> Any:
        # allOf branches are often bare $refs; merge their targets, not the reference.
        seen = 0
        while isinstance(part, dict) and "$ref" in part and seen < _MAX_DEPTH:
            siblings = {k: v for k, v in part.items() if k != "$ref"}
            target = self.resolve(str(part["$ref"]))
            part = _merge([target, siblings]) if siblings and isinstance(target, dict) else target
            seen += 1
        return part

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        raw_props = schema.get("properties")
        props: dict[str, Any] = raw_props if isinstance(raw_props, dict) else {}
        required = [r for r in schema.get("required", []) if isinstance(r, str)]
        shallow = depth >= _MAX_DEPTH
        out: dict[str, Any] = {}
        for key, sub in props.items():
            if shallow and key not in required:
                continue
            out[key] = self.value(sub, depth=depth + 1, variant=0, name=key)
        extra = schema.get("additionalProperties")
        for key in required:
            if key not in out:
                sub = extra if isinstance(extra, dict) else {}
                out[key] = self.value(sub, depth=depth + 1, variant=0, name=key)
        min_props = schema.get("minProperties")
        if isinstance(min_props, int) and extra is not False:
            sub = extra if isinstance(extra, dict) else {}
            index = 0
            while len(out) < min_props:
                key = f"extra_{index}"
                index += 1
                if key not in out:
                    out[key] = self.value(sub, depth=depth + 1, variant=0, name=key)
        return out

    def _array(self, schema: dict[str, Any], depth: int, name: str) -> list[Any]:
        prefix = schema.get("prefixItems")
        items = schema.get("items", {})
        if isinstance(items, list):  # draft-04..2019-09 tuple form
            prefix, items = items, schema.get("additionalItems", {})
        prefix = prefix if isinstance(prefix, list) else []
        minimum = schema.get("minItems", 0) if isinstance(schema.get("minItems"), int) else 0
        maximum = schema.get("maxItems") if isinstance(schema.get("maxItems"), int) else None
        count = max(len(prefix), minimum) if depth >= _MAX_DEPTH else max(len(prefix), minimum, 1)
        if items is False:
            count = len(prefix)
        if maximum is not None:
            count = min(count, maximum)
        out: list[Any] = []
        for i in range(count):
            sub = prefix[i] if i < len(prefix) else items
            # A different variant per position keeps items distinct for uniqueItems.
            out.append(self.value(sub, depth=depth + 1, variant=i, name=name))
        return out

    def _string(self, schema: dict[str, Any], variant: int, name: str) -> str:
        fmt = schema.get("format")
        if isinstance(fmt, str) and fmt in _FORMATS:
            base = _FORMATS[fmt]
            if variant and fmt in ("date", "date-time"):
                base = base.replace("01-01", f"01-{1 + variant % 28:02d}", 1)
        else:
            base = self.text if not name else f"{self.text} {name}"
            if variant:
                base = f"{base} {variant}"
        raw_min, raw_max = schema.get("minLength"), schema.get("maxLength")
        min_len: int = raw_min if isinstance(raw_min, int) else 0
        max_len: int | None = raw_max if isinstance(raw_max, int) else None
        if len(base) < min_len:
            base = base + "x" * (min_len - len(base))
        if max_len is not None and len(base) > max_len:
            base = base[:max_len]
        return base

    def _integer(self, schema: dict[str, Any], variant: int) -> int:
        low, high = _bounds(schema)
        lo = math.ceil(low[0] + (1 if low[1] and low[0] == math.ceil(low[0]) else 0)) if low else None
        hi = math.floor(high[0] - (1 if high[1] and high[0] == math.floor(high[0]) else 0)) if high else None
        step = schema.get("multipleOf")
        step_int = int(step) if isinstance(step, (int, float)) and step > 0 and step == int(step) else 1
        start = lo if lo is not None else (min(1, hi) if hi is not None else 1)
        value = start + variant * step_int
        value = -(-value // step_int) * step_int  # round up to a multiple
        if hi is not None and value > hi:
            value = (hi // step_int) * step_int
        return int(value)

    def _number(self, schema: dict[str, Any], variant: int) -> float | int:
        low, high = _bounds(schema)
        step = schema.get("multipleOf")
        if isinstance(step, (int, float)) and step > 0:
            # Multiples of step: reuse the integer logic on a scaled range.
            scaled: dict[str, Any] = {}
            if low:
                scaled["minimum"] = math.ceil(low[0] / step + (1e-9 if low[1] else 0))
            if high:
                scaled["maximum"] = math.floor(high[0] / step - (1e-9 if high[1] else 0))
            count = self._integer(scaled, variant)
            result = count * step
            return int(result) if float(result).is_integer() and isinstance(step, int) else result
        if low and high:
            lo_v, hi_v = low[0], high[0]
            if not low[1] and not high[1] and variant == 0:
                return lo_v
            # Spread variants inside the open interval.
            return lo_v + (hi_v - lo_v) * (variant + 1) / (variant + 2)
        if low:
            return low[0] + (0.5 if low[1] else 0) + variant
        if high:
            return min(1.5, high[0] - (0.5 if high[1] else 0)) - variant
        return 1.5 + variant


def _bounds(schema: dict[str, Any]) -> tuple[tuple[float, bool] | None, tuple[float, bool] | None]:
    """(value, exclusive) for the lower and upper bound, handling draft-04's boolean form."""
    low: tuple[float, bool] | None = None
    high: tuple[float, bool] | None = None
    minimum, maximum = schema.get("minimum"), schema.get("maximum")
    ex_min, ex_max = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if isinstance(minimum, (int, float)) and not isinstance(minimum, bool):
        low = (minimum, ex_min is True)
    if isinstance(ex_min, (int, float)) and not isinstance(ex_min, bool) and (low is None or ex_min >= low[0]):
        low = (ex_min, True)
    if isinstance(maximum, (int, float)) and not isinstance(maximum, bool):
        high = (maximum, ex_max is True)
    if isinstance(ex_max, (int, float)) and not isinstance(ex_max, bool) and (high is None or ex_max <= high[0]):
        high = (ex_max, True)
    return low, high


def _pick_type(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        # Prefer a concrete type over "null" so the value carries information.
        concrete = [k for k in kind if k != "null"]
        kind = concrete[0] if concrete else "null"
    if isinstance(kind, str):
        return kind
    if "properties" in schema or "required" in schema or "additionalProperties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema or "minItems" in schema:
        return "array"
    if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")):
        return "number"
    return "string"


def _merge(parts: list[Any]) -> dict[str, Any]:
    """Shallow merge for allOf: properties and required are unioned, other keys overwritten."""
    out: dict[str, Any] = {}
    for part in parts:
        if not isinstance(part, dict):
            continue
        for key, val in part.items():
            if key == "properties" and isinstance(val, dict):
                out["properties"] = {**out.get("properties", {}), **val}
            elif key == "required" and isinstance(val, list):
                out["required"] = list(dict.fromkeys([*out.get("required", []), *val]))
            else:
                out[key] = val
    return out
