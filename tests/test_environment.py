"""The suite ignores the developer's environment: no XAI_* variable reaches a test or its subprocesses.

conftest.py clears them for the whole run; these tests check that, and run a part of the suite in
a subprocess with a hostile environment exported to prove it end to end.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from _helpers import xai_variables

from xai_mcp.settings import DEFAULT_HOST, Settings

ROOT = Path(__file__).resolve().parent.parent
# What a developer might have exported; each one, if seen, changes what tests observe.
HOSTILE = {
    "XAI_API_KEY": "xai-hostile",
    "XAI_API_HOST": "nowhere:1",
    "XAI_MCP_DEFAULT_MODEL": "grok-typo",
    "XAI_MCP_TOOLSETS": "models",
    "XAI_MCP_READ_ONLY": "1",
    "XAI_MCP_LOG_LEVEL": "ERROR",
    "XAI_MANAGEMENT_API_KEY": "xai-hostile",
}


def test_no_xai_variable_is_visible_inside_a_test():
    assert xai_variables() == []


def test_settings_built_inside_a_test_have_their_defaults():
    settings = Settings()
    defaults = {name: field.get_default(call_default_factory=True) for name, field in Settings.model_fields.items()}
    assert settings.model_dump() == defaults
    assert settings.api_host == DEFAULT_HOST and settings.api_key is None


def test_a_subprocess_inherits_no_xai_variable():
    code = "import os; print(sorted(k for k in os.environ if k.startswith('XAI_')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.strip() == "[]"


def test_a_hostile_environment_does_not_reach_the_tests():
    # The three tests above, plus a server tool call through the emulator, in a fresh pytest
    # process that inherits the hostile variables, so conftest.py's clearing is what keeps them out.
    env = {**os.environ, **HOSTILE}
    assert set(xai_variables(env)) == set(HOSTILE)
    selection = [
        f"{__file__}::test_no_xai_variable_is_visible_inside_a_test",
        f"{__file__}::test_settings_built_inside_a_test_have_their_defaults",
        f"{__file__}::test_a_subprocess_inherits_no_xai_variable",
        str(ROOT / "tests" / "tools" / "test_small_toolsets.py"),
    ]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *selection],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
