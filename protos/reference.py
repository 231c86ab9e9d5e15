"""Write the contract's reference from the comments in the .proto files:
``python protos/reference.py`` -> ``docs/api-reference.md``.

How: protoc (grpcio-tools) compiles ``surgedesk/v1/*.proto`` into a descriptor set with source
info; the comment before each service, RPC, message, field, enum and enum value (buf lint
requires one on every element) is read from the source locations and laid out as Markdown,
file by file in the order of the files. ``tests/unit/test_protos_current.py`` regenerates it and
fails if the committed file differs. The name is not ``docs/api.md``: beside ``docs/API.md``
it would collide on case-insensitive file systems (macOS, Windows).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import grpc_tools
from google.protobuf import descriptor_pb2
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent
OUT = ROOT.parent / "docs" / "api-reference.md"
GUIDE = ROOT.parent / "docs/API.md"  # how to use the contract, linked from the reference
ORDER = ["customer.proto", "agent.proto", "admin.proto", "common.proto"]
# FileDescriptorProto / DescriptorProto / ... field numbers used in source-info paths
MESSAGE, ENUM, SERVICE = 4, 5, 6
FIELD, NESTED, METHOD, VALUE = 2, 3, 2, 2
TYPE_NAMES = {v: k.removeprefix("TYPE_").lower()
              for k, v in descriptor_pb2.FieldDescriptorProto.Type.items()}


def descriptors() -> descriptor_pb2.FileDescriptorSet:
    include = Path(grpc_tools.__file__).parent / "_proto"
    protos = sorted((ROOT / "surgedesk" / "v1").glob("*.proto"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "contract.binpb"
        args = ["protoc", f"-I{ROOT}", f"-I{include}", f"--descriptor_set_out={out}",
                "--include_source_info", *[str(p.relative_to(ROOT)) for p in protos]]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def _comment(comments: dict[tuple[int, ...], str], path: tuple[int, ...]) -> str:
    return " ".join(line.strip() for line in comments.get(path, "").strip().splitlines())


def _type(field: descriptor_pb2.FieldDescriptorProto,
          maps: dict[str, tuple[str, str]]) -> str:
    if field.type_name:
        name = field.type_name.rsplit(".", 1)[-1]
        if field.type_name in maps:
            key, value = maps[field.type_name]
            return f"map<{key}, {value}>"
        kind = f"[`{name}`](#{name.lower()})" if field.type_name.startswith(
            ".surgedesk.") else f"`{field.type_name.lstrip('.')}`"
    else:
        kind = f"`{TYPE_NAMES[field.type]}`"
    if field.label == descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED:
        return f"repeated {kind}"
    return f"optional {kind}" if field.proto3_optional else kind


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(fds: descriptor_pb2.FileDescriptorSet) -> str:
    files = {Path(f.name).name: f for f in fds.file if f.package == "surgedesk.v1"}
    lines = ["# surgedesk.v1 reference", "",
             "Generated from the comments of `protos/surgedesk/v1/*.proto` by "
             "`python protos/reference.py`; do not edit. How to use the contract (identity, "
             f"errors, retries, limits, events) is [{GUIDE.name}]({GUIDE.name}).", ""]
    for name in ORDER + sorted(set(files) - set(ORDER)):
        f = files[name]
        comments = {tuple(loc.path): loc.leading_comments
                    for loc in f.source_code_info.location if loc.leading_comments}
        lines += [f"## {name}", ""]
        for si, service in enumerate(f.service):
            lines += [f"### {service.name}", "", _comment(comments, (SERVICE, si)), "",
                      "| RPC | request | response | what it does |", "|---|---|---|---|"]
            for mi, m in enumerate(service.method):
                req, resp = m.input_type.rsplit(".", 1)[-1], m.output_type.rsplit(".", 1)[-1]
                stream = "stream " if m.server_streaming else ""
                lines.append(f"| `{m.name}` | [`{req}`](#{req.lower()}) | {stream}[`{resp}`]"
                             f"(#{resp.lower()}) | "
                             f"{_cell(_comment(comments, (SERVICE, si, METHOD, mi)))} |")
            lines.append("")
        for ei, enum in enumerate(f.enum_type):
            lines += _enum(enum, comments, (ENUM, ei))
        for mi, message in enumerate(f.message_type):
            lines += _message(message, comments, (MESSAGE, mi), f.package)
    return "\n".join(lines).rstrip() + "\n"


def _enum(enum: descriptor_pb2.EnumDescriptorProto, comments: dict[tuple[int, ...], str],
          path: tuple[int, ...]) -> list[str]:
    out = [f"### {enum.name}", "", _comment(comments, path), "",
           "| value | number | meaning |", "|---|---:|---|"]
    for vi, value in enumerate(enum.value):
        out.append(f"| `{value.name}` | {value.number} | "
                   f"{_cell(_comment(comments, (*path, VALUE, vi)))} |")
    return [*out, ""]


def _message(message: descriptor_pb2.DescriptorProto, comments: dict[tuple[int, ...], str],
             path: tuple[int, ...], package: str) -> list[str]:
    maps = {f".{package}.{message.name}.{n.name}": (TYPE_NAMES[n.field[0].type],
                                                    _type(n.field[1], {}).strip("`"))
            for n in message.nested_type if n.options.map_entry}
    out = [f"### {message.name}", "", _comment(comments, path), ""]
    if message.field:
        out += ["| field | type | number | meaning |", "|---|---|---:|---|"]
        for fi, field in enumerate(message.field):
            oneof = ""
            if field.HasField("oneof_index") and not field.proto3_optional:
                oneof = f" (one of `{message.oneof_decl[field.oneof_index].name}`)"
            out.append(f"| `{field.name}` | {_type(field, maps)} | {field.number} | "
                       f"{_cell(_comment(comments, (*path, FIELD, fi)))}{oneof} |")
        out.append("")
    if message.reserved_name:
        out += [f"Reserved (removed, never reused): "
                f"{', '.join(f'`{n}`' for n in message.reserved_name)}.", ""]
    for ni, nested in enumerate(message.nested_type):
        if not nested.options.map_entry:
            out += _message(nested, comments, (*path, NESTED, ni), package)
    return out


if __name__ == "__main__":
    OUT.write_text(render(descriptors()))
    print(OUT, file=sys.stderr)
