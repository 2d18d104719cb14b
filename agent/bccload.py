"""Imports bcc from Debian's python3-bpfcc into the venv; called by the agent and the kernel tests.

bcc is not on PyPI (the PyPI `bcc` is unrelated), so the venv reaches the system package by adding
its dist-packages directory to the end of sys.path, for the agent only.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

SYSTEM_DIST = "/usr/lib/python3/dist-packages"


class BccUnavailable(ImportError):
    """bcc cannot be imported; the message says which package to install."""


def import_bcc() -> ModuleType:
    """The `bcc` module, or BccUnavailable naming the fix."""
    try:
        return importlib.import_module("bcc")
    except ImportError:
        pass
    if SYSTEM_DIST not in sys.path:
        sys.path.append(SYSTEM_DIST)  # appended: venv packages keep precedence over Debian's
    try:
        return importlib.import_module("bcc")
    except ImportError as exc:
        raise BccUnavailable("bcc is not importable: install the Debian package python3-bpfcc "
                             "(`make up` does) and run the agent with the system Python 3 venv") from exc
