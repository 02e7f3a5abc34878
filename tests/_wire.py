"""Compare our proto descriptors with the official xai-sdk's, field by field.

The two sets of generated modules cannot share a process (duplicate symbols in the default
descriptor pool), so the SDK's descriptors are read in a subprocess and come back as a
serialized FileDescriptorSet.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable, Iterator

from google.protobuf import descriptor_pb2

_DUMP_SDK = r"""
import importlib, pkgutil, sys
import xai_sdk.proto.v6 as v6
from google.protobuf import descriptor_pb2
out = descriptor_pb2.FileDescriptorSet()
for info in pkgutil.iter_modules(v6.__path__):
    if info.name.endswith("_pb2"):
        module = importlib.import_module(f"xai_sdk.proto.v6.{info.name}")
        out.file.add().ParseFromString(module.DESCRIPTOR.serialized_pb)
sys.stdout.buffer.write(out.SerializeToString())
"""


def sdk_files() -> list[descriptor_pb2.FileDescriptorProto]:
    """The official SDK's file descriptors, read in a subprocess."""
    done = subprocess.run([sys.executable, "-c", _DUMP_SDK], capture_output=True, check=True, timeout=120)
    files = descriptor_pb2.FileDescriptorSet.FromString(done.stdout)
    return list(files.file)


def our_files() -> list[descriptor_pb2.FileDescriptorProto]:
    import importlib
    import pkgutil

    import xai_mcp._pb.v1 as v1

    result = []
    for info in pkgutil.iter_modules(v1.__path__):
        if info.name.endswith("_pb2"):
            module = importlib.import_module(f"xai_mcp._pb.v1.{info.name}")
            result.append(descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb))
    return result


def _messages(
    prefix: str, messages: Iterable[descriptor_pb2.DescriptorProto]
) -> Iterator[tuple[str, descriptor_pb2.DescriptorProto]]:
    for message in messages:
        name = f"{prefix}.{message.name}"
        yield name, message
        yield from _messages(name, message.nested_type)


def _enums(files: Iterable[descriptor_pb2.FileDescriptorProto]) -> dict[str, descriptor_pb2.EnumDescriptorProto]:
    found = {}
    for file in files:
        for enum in file.enum_type:
            found[f"{file.package}.{enum.name}"] = enum
        for name, message in _messages(file.package, file.message_type):
            for enum in message.enum_type:
                found[f"{name}.{enum.name}"] = enum
    return found


def _index(files: Iterable[descriptor_pb2.FileDescriptorProto]) -> dict[str, descriptor_pb2.DescriptorProto]:
    return {name: m for f in files for name, m in _messages(f.package, f.message_type)}


def _field_facts(
    message: descriptor_pb2.DescriptorProto, field: descriptor_pb2.FieldDescriptorProto
) -> dict[str, object]:
    """What reaches the wire (and what presence means) for one field."""
    in_oneof = field.HasField("oneof_index") and not field.proto3_optional
    return {
        "name": field.name,
        "type": descriptor_pb2.FieldDescriptorProto.Type.Name(field.type),
        "type_name": field.type_name,
        "label": descriptor_pb2.FieldDescriptorProto.Label.Name(field.label),
        "optional": field.proto3_optional,
        "oneof": message.oneof_decl[field.oneof_index].name if in_oneof else None,
        "packed": field.options.packed if field.options.HasField("packed") else None,
    }


def compare(
    ours: list[descriptor_pb2.FileDescriptorProto], theirs: list[descriptor_pb2.FileDescriptorProto]
) -> list[str]:
    """Every difference between what we define and the reference. Empty means compatible."""
    problems: list[str] = []
    their_messages, their_enums = _index(theirs), _enums(theirs)
    for name, message in _index(ours).items():
        reference = their_messages.get(name)
        if reference is None:
            problems.append(f"message {name}: not in the reference")
            continue
        by_number = {f.number: f for f in reference.field}
        for field in message.field:
            ref_field = by_number.get(field.number)
            if ref_field is None:
                problems.append(f"{name}.{field.name} = {field.number}: no such field number in the reference")
                continue
            mine, ref = _field_facts(message, field), _field_facts(reference, ref_field)
            for key in mine:
                if mine[key] != ref[key]:
                    problems.append(
                        f"{name}.{field.name} = {field.number}: {key} is {mine[key]!r}, reference {ref[key]!r}"
                    )
    for name, enum in _enums(ours).items():
        reference_enum = their_enums.get(name)
        if reference_enum is None:
            problems.append(f"enum {name}: not in the reference")
            continue
        ref_values = {v.name: v.number for v in reference_enum.value}
        for value in enum.value:
            if ref_values.get(value.name) != value.number:
                problems.append(f"enum {name}.{value.name} = {value.number}: reference {ref_values.get(value.name)!r}")
    their_methods = {f"/{f.package}.{s.name}/{m.name}": m for f in theirs for s in f.service for m in s.method}
    for file in ours:
        for service in file.service:
            for method in service.method:
                path = f"/{file.package}.{service.name}/{method.name}"
                ref_method = their_methods.get(path)
                if ref_method is None:
                    problems.append(f"rpc {path}: not in the reference")
                    continue
                for key in ("input_type", "output_type", "client_streaming", "server_streaming"):
                    if getattr(method, key) != getattr(ref_method, key):
                        problems.append(
                            f"rpc {path}: {key} is {getattr(method, key)!r}, reference {getattr(ref_method, key)!r}"
                        )
    return problems
