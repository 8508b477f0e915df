"""Print pip constraints pinning every `>=` lower bound of pyproject.toml's dependencies.

`make test-oldest` installs the project with them, so each bound is one that was tested.
"""

import re
import sys
from pathlib import Path

text = Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml").read_text()
block = re.search(r"^dependencies = \[(.*?)^\]", text, re.S | re.M).group(1)
pins = {}
for name, version in re.findall(r'"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*>=\s*([^;,"\s]+)', block):
    pins[name.lower()] = version
print("\n".join(f"{name}=={version}" for name, version in sorted(pins.items())))
