"""The one function that parses YAML text in the package: :func:`safe_load_text`.

It loads with ``CSafeLoader`` when PyYAML was built with libyaml: libyaml's C parser with
``SafeLoader``'s constructor, which builds plain YAML types only (mappings, lists, strings,
numbers, booleans, null, dates), exactly as ``yaml.safe_load`` does, several times faster.
Without libyaml it is ``SafeLoader`` itself. ``tests/reliability/test_security.py`` checks that
this is the only ``yaml.load`` call in the package.
"""

from __future__ import annotations

from typing import Any

import yaml


def safe_load_text(text: str) -> Any:
    """``yaml.safe_load(text)``: the same data and the same errors, faster.

    For text that does not parse, the error is the one ``yaml.safe_load`` raises (libyaml's
    messages carry less context: no offending character, no source line), so the
    ``MarkedYAMLError`` marks (line, column) and problems are unchanged.
    """
    try:
        # a safe loader: SafeLoader's constructor (plain YAML types only), on libyaml if built
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    except (yaml.YAMLError, UnicodeError):
        return yaml.safe_load(text)
