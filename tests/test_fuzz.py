"""Bad input for every tool, generated from each tool's own input schema (hypothesis).

Three promises, checked through the MCP client against the emulator:
- a value the schema rules out (wrong type, out of bounds, NaN/Infinity, too short or long, not
  in the enum, a missing required argument, an unknown argument) is refused with `isError` and a
  message naming the argument;
- a value the schema allows but that is hostile (control characters, odd unicode, huge strings,
  bad base64 and data URLs, paths to nothing, folders, empty files, symlinks out of the allowed
  folders) either works or fails with a clear message naming the argument (or saying what xAI
  answered), never the bare "Error executing tool X" of an unexpected crash;
- after each example the server still answers a cheap call.

The schemas come from `tools/list`; nothing below knows a tool's arguments by heart. One server
and client per test function (not per example) keeps this fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import jsonschema
import pytest
from _helpers import MANAGEMENT_KEY, TEST_KEY, error_text, settings_from, structured
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.types import CallToolResult, TextContent, Tool

from xai_mcp.emulator import png
from xai_mcp.emulator.config import EmulatorConfig
from xai_mcp.emulator.server import Emulator
from xai_mcp.server import create_server
from xai_mcp.settings import Settings
from xai_mcp.tools import CATALOG

# Huge strings are part of the point; hypothesis warns when it prints them in a report, and a
# warning is an error here, which would hide the failing example behind a "flaky" complaint.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning")

# Examples per tool; every tool gets its own test, so all 30 are fuzzed on every run.
RULED_OUT = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
HOSTILE = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
MAX_LIST = 3  # items per generated list: enough to reach item validation, cheap to send
HUGE = 100_000  # the longest string generated for a field that allows more
OFFLINE = settings_from(
    api_key="fuzz-key",
    api_host="127.0.0.1:9",
    insecure=True,
    management_key=MANAGEMENT_KEY,  # every toolset, collections included
    management_api_host="127.0.0.1:9",
)
# Listed from the server itself (no network: listing tools does not touch xAI).
TOOL_NAMES = sorted(tool.name for tool in anyio.run(create_server(OFFLINE).list_tools))


class Served:
    """The server, its client and the emulator, running in an event loop on a helper thread.

    The tests themselves are synchronous: hypothesis then reports a failing example plainly
    (under the anyio plugin a failing async example tears the shared runner down and hides it).
    """

    def __init__(self, portal: BlockingPortal, client: Client, emulator: Emulator, tools: dict[str, Tool]) -> None:
        self.portal = portal
        self.client = client
        self.emulator = emulator
        self.tools = tools

    def __repr__(self) -> str:
        # Hypothesis prints the test's arguments when it reports an example; the full tool list
        # would make a 100 kB repr, which it warns about (an error under our warning filter).
        return f"Served(emulator at {self.emulator.address})"

    def call(self, name: str, arguments: dict[str, Any]) -> CallToolResult:
        return self.portal.call(self.client.call_tool, name, arguments)

    def still_answers(self) -> None:
        assert structured(self.call("tokenize_text", {"text": "still here"}))["token_count"] == 3


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One server and client for the whole module (60 tests): a fresh one per example would dominate."""
    # Jobs finish at once, so valid calls to video/deferred/batch tools never sit in a wait.
    config = EmulatorConfig(
        deferred_seconds=0.0, video_seconds=0.0, batch_seconds=0.0, index_seconds=0.0, management_key=MANAGEMENT_KEY
    )
    with start_blocking_portal("asyncio") as portal, portal.wrap_async_context_manager(Emulator(config)) as emulator:
        settings = Settings(
            api_key=TEST_KEY,
            api_host=emulator.address,
            management_key=MANAGEMENT_KEY,
            management_api_host=emulator.address,
            insecure=True,
            output_dir=tmp_path_factory.mktemp("fuzz") / "output",
            wait_seconds=10,
        )
        # The legacy era is JSON-RPC over memory streams: the path stdio hosts take, minus the pipe.
        client = Client(create_server(settings), mode="legacy")
        with portal.wrap_async_context_manager(client):
            tools = {tool.name: tool for tool in portal.call(client.list_tools).tools}
            # Every tool of every toolset, collections included (so a new toolset is fuzzed with no edit here).
            assert sorted(tools) == TOOL_NAMES == sorted(spec.name for toolset in CATALOG for spec in toolset.tools())
            yield Served(portal, client, emulator, tools)


# --- strategies from a JSON schema -----------------------------------------------------------


def _deref(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _variants(schema: dict[str, Any], defs: dict[str, Any]) -> list[dict[str, Any]]:
    schema = _deref(schema, defs)
    # oneOf: a discriminated union (e.g. `true` or an options object), whose branches never overlap.
    branches = schema.get("anyOf") or schema.get("oneOf")
    return [_deref(v, defs) for v in branches] if branches else [schema]


# Strings an agent (or an attacker steering one) might put anywhere.
HOSTILE_STRINGS = [
    "../../etc/passwd",
    "/etc/passwd",
    "....//....//etc/passwd",
    "~/../../etc/shadow",
    "file:///etc/passwd",
    "ftp://example.com/a.png",
    "data:image/png;base64,!!!not-base64!!!",
    "data:image/png;base64,",
    "data:,",
    "data:image/png;base64,aGVsbG8=",  # valid base64, not an image
    "data:text/html;base64,PGgxPmhpPC9oMT4=",
    "http://127.0.0.1:9/unreachable.png",
    "\x00",
    "a\x00b",
    "\u202egnp.exe",
    "\ud800",  # a lone surrogate: valid JSON (as an escape), not valid unicode
    "NaN",
    "null",
    "{}",
    "[]",
    "%s%n%x",
    "' OR 1=1 --",
    "\r\n\t\x1b[31m",
    "🙂" * 50,
    " ",
]


def _string(schema: dict[str, Any], extra: list[str]) -> st.SearchStrategy[str]:
    low = schema.get("minLength", 0)
    high = schema.get("maxLength")
    if "pattern" in schema:
        return st.from_regex(schema["pattern"], fullmatch=True)
    fits = [s for s in HOSTILE_STRINGS + extra if low <= len(s) <= (high if high is not None else len(s))]
    big = min(high if high is not None else HUGE, HUGE)
    options = [
        st.text(st.characters(codec="utf-8"), min_size=low, max_size=min(high or 40, 40)),
        st.text(st.characters(categories=["Cc", "Cf", "Zs", "So", "Mn"]), min_size=max(low, 1), max_size=20),
        st.builds(lambda c: c * big, st.sampled_from("a\x00é漢🙂")).filter(lambda s: len(s) >= low),
    ]
    if fits:
        options.append(st.sampled_from(fits))
    return st.one_of(options)


def valid(schema: dict[str, Any], defs: dict[str, Any], extra: list[str], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values the schema allows, leaning hostile for strings."""
    variants = _variants(schema, defs)
    if len(variants) > 1:
        return st.one_of([valid(v, defs, extra, depth) for v in variants])
    schema = variants[0]
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return st.integers(schema.get("minimum", -(2**31)), schema.get("maximum", 2**31 - 1))
    if kind == "number":
        low = schema.get("minimum", schema.get("exclusiveMinimum", -1e9))
        high = schema.get("maximum", schema.get("exclusiveMaximum", 1e9))
        return st.floats(
            low,
            high,
            exclude_min="exclusiveMinimum" in schema,
            exclude_max="exclusiveMaximum" in schema,
            allow_nan=False,
            allow_infinity=False,
        )
    if kind == "string":
        return _string(schema, extra)
    if kind == "array":
        low = schema.get("minItems", 0)
        high = min(schema.get("maxItems", MAX_LIST), max(low, MAX_LIST))
        return st.lists(valid(schema["items"], defs, extra, depth + 1), min_size=low, max_size=high)
    if kind == "object" and "properties" in schema:
        return valid_arguments(schema, defs, extra, depth + 1)
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):  # a map, e.g. of strings
        members = valid(schema["additionalProperties"], defs, extra, depth + 1)
        return st.dictionaries(st.text(max_size=8), members, max_size=3)
    if kind == "object":  # free-form (a JSON schema the user supplies): a few simple members
        scalars = st.one_of(st.none(), st.booleans(), st.integers(-10, 10), st.text(max_size=8))
        return st.dictionaries(st.text(max_size=8), scalars, max_size=3)
    raise AssertionError(f"no strategy for schema {schema}")


def valid_arguments(
    schema: dict[str, Any], defs: dict[str, Any], extra: list[str], depth: int = 0
) -> st.SearchStrategy[dict[str, Any]]:
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))
    # Deeper than one nested model, only required members: the point is the top level.
    optional = {k: valid(v, defs, extra, depth) for k, v in properties.items() if k not in required}
    if depth > 1:
        optional = {}
    return st.fixed_dictionaries({k: valid(properties[k], defs, extra, depth) for k in required}, optional=optional)


def _plain(schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    """One ordinary valid value (the other arguments, while one argument is under test)."""
    schema = _deref(schema, defs)
    if "default" in schema:
        return schema["default"]
    for variant in _variants(schema, defs):
        if "enum" in variant:
            return variant["enum"][0]
        kind = variant.get("type")
        if kind == "string":
            return "x" * max(variant.get("minLength", 1), 1) if "pattern" not in variant else "fn"
        if kind == "integer":
            return variant.get("minimum", 1)
        if kind == "number":
            return variant.get("minimum", variant.get("exclusiveMinimum", -1.0) + 1)
        if kind == "boolean":
            return False
        if kind == "array":
            return [_plain(variant["items"], defs) for _ in range(variant.get("minItems", 0))]
        if kind == "object":
            props = variant.get("properties", {})
            return {k: _plain(props[k], defs) for k in variant.get("required", [])}
    raise AssertionError(f"no plain value for {schema}")


# Wrong JSON types that pydantic's lax mode does not coerce (it does take "5" for an integer,
# 1/0/"true" for a boolean and true for an integer, and it parses JSON text given for a list or
# an object, which hosts such as Claude Desktop send): those are deliberate leniencies.
_WRONG_TYPES: dict[str, list[Any]] = {
    "string": [5, -1.5, True, ["a"], {"a": 1}],
    "integer": ["five", "", "1.5.2", 1.5, -0.25, ["1"], {"n": 1}],
    "number": ["fast", "", "1,5", ["1"], {"n": 1}],
    "boolean": ["maybe", "2", 2, -1, 0.5, ["true"], {"b": True}],
    "array": ["not a list", 7, True, {"items": []}],
    "object": ["not an object", 7, True, [1, 2]],
}


def invalid(schema: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values the schema rules out and the server must refuse."""
    variants = _variants(schema, defs)
    kinds = {v.get("type") for v in variants}
    candidates: list[Any] = []
    if "null" not in kinds:
        candidates.append(None)
    for kind in kinds - {"null"}:
        candidates += _WRONG_TYPES.get(kind, [])
    # A wrong type for one branch of a union can be right for another (true for `bool | options`).
    whole = jsonschema.Draft202012Validator({**schema, "$defs": defs})
    candidates = [c for c in candidates if not whole.is_valid(c)]
    options = [st.sampled_from(candidates)]
    solid = [v for v in variants if v.get("type") != "null"]
    if len(solid) == 1:
        one = solid[0]
        if "enum" in one:
            options.append(st.sampled_from(["bogus", "", str(one["enum"][0]).upper() + "!", " " + one["enum"][0]]))
        if one.get("type") in ("integer", "number"):
            bounds = []
            if "maximum" in one:
                top = one["maximum"]
                bounds += [top + 1, top * 10**6 + 1, 10**30, 2**63]
            if "minimum" in one:
                bottom = one["minimum"]
                bounds += [bottom - 1, -(10**30), -(2**63)]
            if one.get("type") == "number":
                # As strings: JSON has no NaN or Infinity (a JSON encoder turns float NaN into null).
                bounds += ["NaN", "nan", "Infinity", "-inf", "1e999"]
            options.append(st.sampled_from(bounds or ["NaN"]))
        if one.get("type") == "string":
            if one.get("minLength", 0) >= 1:
                options.append(st.just(""))
            if one.get("maxLength", 10**9) <= 2_000_000:
                options.append(st.just("x" * (one["maxLength"] + 1)))
        if one.get("type") == "array":
            items = one["items"]
            if one.get("minItems", 0) >= 1:
                options.append(st.just([]))
            if "maxItems" in one:
                options.append(st.just([_plain(items, defs)] * (one["maxItems"] + 1)))
            # One bad item among good ones: the message must still lead to the argument.
            options.append(
                st.tuples(invalid(items, defs), st.integers(0, 2)).map(
                    lambda bad: [_plain(items, defs)] * bad[1] + [bad[0]]
                )
            )
    return st.one_of(options)


# --- checks ----------------------------------------------------------------------------------


def _text(result: CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, TextContent))


def _names_the_problem(tool: Tool, message: str) -> bool:
    """The message names one of the tool's arguments, or says what xAI answered."""
    fields = set(tool.input_schema.get("properties", {}))
    return any(field in message for field in fields) or "xAI" in message


def _violations(tool: Tool) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    """(the argument at fault, arguments with exactly that one problem)."""
    schema = tool.input_schema
    defs = schema.get("$defs", {})
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    base = {name: _plain(properties[name], defs) for name in required}
    options: list[st.SearchStrategy[tuple[str, dict[str, Any]]]] = [
        # An unknown argument, e.g. a typo of a real one.
        st.sampled_from([*(f"{name}x" for name in properties), "promt", "ctx", "__proto__", "x" * 300]).map(
            lambda extra: (extra, {**base, extra: "value"})
        )
    ]
    if required:
        options.append(st.sampled_from(required).map(lambda name: (name, {k: v for k, v in base.items() if k != name})))
    for name, prop in properties.items():
        options.append(invalid(prop, defs).map(lambda value, name=name: (name, {**base, name: value})))
    return st.one_of(options)


@pytest.mark.parametrize("name", TOOL_NAMES)
@RULED_OUT
@given(data=st.data())
def test_values_the_schema_rules_out_are_refused_naming_the_argument(
    data: st.DataObject, served: Served, name: str
) -> None:
    tool = served.tools[name]
    before = sum(served.emulator.calls.values())
    field, arguments = data.draw(_violations(tool))
    if field in tool.input_schema.get("properties", {}):
        # The generator's own check: these arguments really break the published schema.
        assert not jsonschema.Draft202012Validator(tool.input_schema).is_valid(arguments)
    message = error_text(served.call(name, arguments))
    assert message.startswith(f"Error executing tool {name}: ")  # never the bare text of a crash
    assert field in message
    assert sum(served.emulator.calls.values()) == before  # refused before anything reached xAI
    served.still_answers()


# --- schema-valid but hostile ----------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile_paths(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Local paths that are no usable image, each for its own reason."""
    folder = tmp_path_factory.mktemp("hostile")
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.png").write_text("not an image at all")
    (folder / "truncated.png").write_bytes(png.render("t", 8, 8)[:12])
    (folder / "dir.png").mkdir()
    with open(folder / "huge.png", "wb") as handle:
        handle.truncate(10 * 1024 * 1024 + 1)  # sparse, one byte over the limit
    (folder / "escape.png").symlink_to("/etc/hostname")  # a real file outside the allowed folders
    (folder / "loop.png").symlink_to(folder / "loop.png")
    (folder / "dangling.png").symlink_to(folder / "nowhere.png")
    unreadable = folder / "unreadable.png"
    unreadable.write_bytes(png.render("u", 8, 8))
    unreadable.chmod(0)
    names = ["empty", "text", "truncated", "dir", "huge", "escape", "loop", "dangling", "unreadable", "missing"]
    return [str(folder / f"{name}.png") for name in names] + [
        str(folder / ".." / ".." / folder.parent.name / folder.name / "text.png"),
        "/etc/hostname",
        "~/definitely-missing-xai-mcp.png",
        "relative/missing.png",
        "/",
    ]


def _is_bare_crash(tool: Tool, message: str) -> bool:
    return message.strip() in (f"Error executing tool {tool.name}", f"Error executing tool {tool.name}:")


@pytest.mark.parametrize("name", TOOL_NAMES)
@HOSTILE
@given(data=st.data())
def test_hostile_but_valid_values_work_or_fail_clearly(
    data: st.DataObject, served: Served, hostile_paths: list[str], name: str
) -> None:
    tool = served.tools[name]
    schema = tool.input_schema
    arguments = data.draw(valid_arguments(schema, schema.get("$defs", {}), hostile_paths))
    assert jsonschema.Draft202012Validator(schema).is_valid(arguments)  # the generator's own check
    result = served.call(name, arguments)
    if result.is_error:
        message = _text(result)
        assert not _is_bare_crash(tool, message)
        assert "internal error" not in message.lower()
        assert _names_the_problem(tool, message)
    served.still_answers()


def test_a_misspelt_argument_is_refused_not_ignored(served: Served) -> None:
    # mcp 2.3 alone would drop `promt` and run (and bill) the call; we refuse it by name.
    before = served.emulator.handled["GenerateImage"]
    message = error_text(served.call("generate_image", {"prompt": "a cat", "promt": "a cat"}))
    assert "promt: unknown argument" in message
    assert served.emulator.handled["GenerateImage"] == before


def test_text_that_is_not_unicode_is_refused_naming_where(served: Served) -> None:
    # Found by the hostile fuzz: pydantic lets a lone surrogate through unconstrained strings,
    # and it then failed to encode (a file path, a protobuf) as a bare "Error executing tool".
    before = sum(served.emulator.calls.values())
    image = error_text(served.call("edit_image", {"prompt": "p", "images": ["\ud800.png"]}))
    assert "images[0]: not valid unicode text" in image
    messages = [{"role": "user", "content": "fine"}, {"role": "user", "content": "bad \udfff"}]
    chat = error_text(served.call("chat", {"messages": messages}))
    assert "messages[1].content: not valid unicode text" in chat
    assert sum(served.emulator.calls.values()) == before
