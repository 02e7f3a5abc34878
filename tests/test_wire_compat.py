"""Our protos against the official xai-sdk's descriptors: a wrong field number is a silent bug."""

from __future__ import annotations

from pathlib import Path

import pytest
from _wire import compare, our_files, sdk_files
from google.protobuf import descriptor_pb2


@pytest.fixture(scope="module")
def reference() -> list[descriptor_pb2.FileDescriptorProto]:
    return sdk_files()


PROTO_SOURCES = Path(__file__).resolve().parent.parent / "protos" / "xai_mcp" / "_pb" / "v1"

# RPCs of services we define that we leave out on purpose (say why next to each).
LEFT_OUT_RPCS = {
    "/xai_api.Chat/CompactContext",  # no tool compacts context
}


def test_every_message_field_enum_and_rpc_matches_the_official_sdk(reference):
    ours = our_files()
    assert compare(ours, reference) == []
    # The comparison covered every file we compile, whatever its proto package: a .proto
    # whose generated module is missing, or a module that defines nothing, would escape it.
    assert sorted(Path(f.name).name for f in ours) == sorted(p.name for p in PROTO_SOURCES.glob("*.proto"))
    assert all(f.message_type or f.enum_type for f in ours)
    assert sum(len(f.message_type) for f in ours) > 80


def test_the_services_we_define_have_every_rpc_of_the_reference(reference):
    ours = {f"/{f.package}.{s.name}/{m.name}" for f in our_files() for s in f.service for m in s.method}
    services = {path.rsplit("/", 1)[0] for path in ours}
    theirs = {f"/{f.package}.{s.name}/{m.name}" for f in reference for s in f.service for m in s.method}
    missing = {path for path in theirs if path.rsplit("/", 1)[0] in services} - ours
    assert missing == LEFT_OUT_RPCS


def _tokenize_file() -> descriptor_pb2.FileDescriptorProto:
    return next(f for f in our_files() if any(m.name == "Token" for m in f.message_type))


def _field(file: descriptor_pb2.FileDescriptorProto, message: str, field: str) -> descriptor_pb2.FieldDescriptorProto:
    owner = next(m for m in file.message_type if m.name == message)
    return next(f for f in owner.field if f.name == field)


def _only(file: descriptor_pb2.FileDescriptorProto, reference) -> list[str]:
    return compare([file], reference)


# The check can fail: each deliberately wrong descriptor below must be reported.


def test_a_wrong_field_number_is_reported(reference):
    file = _tokenize_file()
    _field(file, "Token", "token_bytes").number = 3
    assert _only(file, reference) == ["xai_api.Token.token_bytes = 3: no such field number in the reference"]


def test_a_wrong_field_type_is_reported(reference):
    file = _tokenize_file()
    _field(file, "Token", "token_id").type = descriptor_pb2.FieldDescriptorProto.TYPE_INT32
    assert _only(file, reference) == ["xai_api.Token.token_id = 1: type is 'TYPE_INT32', reference 'TYPE_UINT32'"]


def test_a_wrong_label_is_reported(reference):
    file = _tokenize_file()
    _field(file, "TokenizeTextResponse", "tokens").label = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
    problems = _only(file, reference)
    assert any("tokens = 1: label is 'LABEL_OPTIONAL'" in p for p in problems), problems


def test_a_renamed_field_and_a_missing_message_are_reported(reference):
    file = _tokenize_file()
    _field(file, "Token", "string_token").name = "text"
    file.message_type.add(name="Invented")
    problems = _only(file, reference)
    assert "xai_api.Token.text = 2: name is 'text', reference 'string_token'" in problems
    assert "message xai_api.Invented: not in the reference" in problems


def test_wrong_enum_values_and_rpcs_are_reported(reference):
    chat = next(f for f in our_files() if any(s.name == "Chat" for s in f.service))
    status = next(e for e in chat.enum_type if e.name == "ToolCallStatus")
    next(v for v in status.value if v.name == "TOOL_CALL_STATUS_IN_PROGRESS").number = 4
    method = next(m for m in chat.service[0].method if m.name == "GetCompletion")
    method.server_streaming = True
    problems = _only(chat, reference)
    assert "enum xai_api.ToolCallStatus.TOOL_CALL_STATUS_IN_PROGRESS = 4: reference 0" in problems
    assert "rpc /xai_api.Chat/GetCompletion: server_streaming is True, reference False" in problems


def test_leaving_a_real_oneof_or_dropping_optional_is_reported(reference):
    chat = next(f for f in our_files() if any(s.name == "Chat" for s in f.service))
    content = next(m for m in chat.message_type if m.name == "Content")
    text = next(f for f in content.field if f.name == "text")
    text.ClearField("oneof_index")
    request = next(m for m in chat.message_type if m.name == "GetCompletionsRequest")
    temperature = next(f for f in request.field if f.name == "temperature")
    temperature.proto3_optional = False
    temperature.ClearField("oneof_index")
    problems = _only(chat, reference)
    assert "xai_api.Content.text = 1: oneof is None, reference 'content'" in problems
    assert "xai_api.GetCompletionsRequest.temperature = 14: optional is False, reference True" in problems


def _our_file(name: str) -> descriptor_pb2.FileDescriptorProto:
    return next(f for f in our_files() if Path(f.name).name == name)


def test_a_client_streaming_rpc_that_is_not_is_reported(reference):
    files = _our_file("files.proto")
    upload = next(m for m in files.service[0].method if m.name == "UploadFile")
    upload.client_streaming = False
    assert _only(files, reference) == ["rpc /xai_api.Files/UploadFile: client_streaming is False, reference True"]


def test_the_proto_package_is_part_of_every_name(reference):
    # collections and shared have packages of their own upstream; declared as xai_api, the
    # same definitions would be other messages and another method path.
    collections = _our_file("collections.proto")
    collections.package = "xai_api"
    problems = _only(collections, reference)
    assert "message xai_api.CollectionMetadata: not in the reference" in problems
    assert "rpc /xai_api.Collections/ListCollections: not in the reference" in problems
    # The two Ordering enums number alike-named values differently (files: ASCENDING = 0).
    shared = _our_file("shared.proto")
    shared.package = "xai_api"
    assert "enum xai_api.Ordering.ORDERING_ASCENDING = 1: reference None" in _only(shared, reference)
