"""Tracked files hold no machine-specific text: no absolute path of this checkout or its parent folder, no home
folder, no host name, no kernel string. Results and docs name the hardware in words instead."""

import os
import platform
import re
import socket
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

BINARY_SUFFIXES = {".png", ".jpg", ".ico", ".gz", ".zip", ".npz", ".keras", ".woff", ".woff2", ".sqlite3"}


def tracked_files() -> list[Path]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=PROJECT_ROOT, capture_output=True, check=True, text=True
        ).stdout.split("\0")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: nothing is tracked")
    return [PROJECT_ROOT / name for name in listed if name and Path(name).suffix not in BINARY_SUFFIXES]


def machine_specific_patterns() -> dict[str, re.Pattern]:
    root = PROJECT_ROOT.resolve()
    patterns = {
        "this checkout's absolute path": re.escape(str(root)),
        "the folder that holds the checkout": re.escape(str(root.parent).rstrip("/") + "/")
        if root.parent != Path("/")
        else None,
        "the kernel string": re.escape(platform.release()),
    }
    home = os.path.expanduser("~")
    if home not in ("/", "~"):
        patterns["the home folder"] = re.escape(home.rstrip("/") + "/")
    host = socket.gethostname().split(".")[0]
    if len(host) >= 4:  # a short name such as "vm" is an ordinary word in text
        patterns["the host name"] = rf"\b{re.escape(host)}\b"
    return {what: re.compile(pattern) for what, pattern in patterns.items() if pattern}


def test_no_tracked_file_holds_machine_specific_text():
    patterns = machine_specific_patterns()
    found = []
    for path in tracked_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError):
            continue
        for what, pattern in patterns.items():
            if match := pattern.search(text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{path.relative_to(PROJECT_ROOT)}:{line}: {what} ({match.group(0)!r})")
    assert not found, "machine-specific text in tracked files:\n" + "\n".join(found)


def test_the_check_finds_what_it_looks_for():
    """The patterns match this machine's own values (the test above is not vacuous)."""
    patterns = machine_specific_patterns()
    assert patterns["this checkout's absolute path"].search(f"see {PROJECT_ROOT.resolve()}/README.md")
    assert patterns["the kernel string"].search(f"Linux {platform.release()}")
