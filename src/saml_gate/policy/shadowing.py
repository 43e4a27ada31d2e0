"""Rules that can never decide a request, for ``saml-gate check``.

The first matching rule decides (:mod:`~saml_gate.policy.access`), so a rule every request of
which an earlier rule already matches is dead: usually a mistake in the order (a broad prefix
before a narrower one that was meant to tighten it). The analysis is conservative: it reports
a rule only when the earlier one provably covers every path, method (and host, where rules name
hosts) the later one matches; patterns are judged only where that is certain.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from saml_gate.policy.rules import Rule


@dataclass(frozen=True)
class Shadowed:
    """``later`` (its index) can never match: ``earlier`` (its index) matches all it would."""

    earlier: int
    later: int


def shadowed_rules(rules: Sequence[Rule]) -> list[Shadowed]:
    """Each rule that an earlier rule covers (the first such earlier rule)."""
    found: list[Shadowed] = []
    for later, rule in enumerate(rules):
        for earlier in range(later):
            if covers(rules[earlier], rule):
                found.append(Shadowed(earlier, later))
                break
    return found


def public_everywhere(rule: Rule) -> bool:
    """A public rule for every path and method: the whole app is public from it on."""
    return rule.public and rule.path == "/" and not rule.methods and _host(rule) is None


def covers(first: Rule, then: Rule) -> bool:
    """Whether ``first`` matches every request ``then`` matches."""
    if first.methods and not (then.methods and set(then.methods) <= set(first.methods)):
        return False
    if _host(first) is not None and _host(first) != _host(then):
        return False
    return _path_covers(first.path, then.path)


def _host(rule: Rule) -> object:
    """The rule's host, where rules have one (a rule without applies to every host)."""
    return getattr(rule, "host", None)


def _path_covers(first: str | re.Pattern[str], then: str | re.Pattern[str]) -> bool:
    if isinstance(first, str) and first == "/":  # the prefix of every path
        return True
    if isinstance(then, re.Pattern):  # a pattern's paths are not enumerable
        return isinstance(first, re.Pattern) and first.pattern == then.pattern
    # what ``then`` matches: a prefix (with its bare form), or one path (with its slash form)
    if isinstance(first, re.Pattern):
        return not then.endswith("/") and _all(first.fullmatch, (then, then + "/"))
    if first.endswith("/"):
        return then.startswith(first) or then == first[:-1]
    return not then.endswith("/") and then == first


def _all(match: Callable[[str], object], paths: Sequence[str]) -> bool:
    return all(match(path) is not None for path in paths)
