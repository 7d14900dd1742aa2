"""Print the version of every dependency this project declares, as installed here.

CI prints this after installing, so a break caused by a new release of a dependency shows up
next to the versions that caused it.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata

PROJECT = "inbox-messenger"


def declared(project: str = PROJECT) -> list[str]:
    """Names of the project's requirements (runtime and every extra), in declared order."""
    names = []
    for requirement in metadata.requires(project) or []:
        match = re.match(r"[A-Za-z0-9._-]+", requirement)
        if match and match.group(0) not in names:
            names.append(match.group(0))
    return names


def main() -> int:
    print(f"python {sys.version.split()[0]}")
    for name in declared():
        try:
            print(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            print(f"{name} (not installed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
