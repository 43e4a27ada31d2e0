"""Which rules can never match because an earlier one covers them (``saml-gate check``)."""

from __future__ import annotations

import re

import pytest

from saml_gate.policy import Rule
from saml_gate.policy.shadowing import Shadowed, covers, public_everywhere, shadowed_rules


@pytest.mark.parametrize(
    ("first", "then", "covered"),
    [
        (Rule("/admin/"), Rule("/admin/billing/"), True),
        (Rule("/admin/"), Rule("/admin/x"), True),
        (Rule("/admin/"), Rule("/admin"), True),  # /admin and /admin/ both match /admin/
        (Rule("/admin"), Rule("/admin/"), False),  # the prefix reaches /admin/x too
        (Rule("/admin"), Rule("/admin"), True),
        (Rule("/admin/billing/"), Rule("/admin/"), False),
        (Rule("/"), Rule(re.compile(r"/r/\d+")), True),
        (Rule(re.compile(r"/r/.*")), Rule("/r/x"), True),
        (Rule(re.compile(r"/r/x")), Rule("/r/x"), False),  # not /r/x/, which the exact rule takes
        (Rule(re.compile(r"/r/.*")), Rule("/r/"), False),  # a prefix: not enumerable
        (Rule(re.compile(r"/a")), Rule(re.compile(r"/a")), True),
        (Rule("/api/", methods=["POST"]), Rule("/api/x", methods=["POST"]), True),
        (Rule("/api/", methods=["POST"]), Rule("/api/x"), False),  # GET still reaches it
        (Rule("/api/", methods=["GET"]), Rule("/api/x", methods=["HEAD"]), True),
        (Rule("/api/"), Rule("/api/x", methods=["PUT"]), True),
        (Rule("/x/", public=True), Rule("/x/y", groups=["a"]), True),
    ],
)
def test_covers(first: Rule, then: Rule, covered: bool) -> None:
    assert covers(first, then) is covered


def test_each_shadowed_rule_is_named_with_the_first_rule_covering_it() -> None:
    rules = [Rule("/a/"), Rule("/b/"), Rule("/a/x"), Rule("/b/y/"), Rule("/c")]
    assert shadowed_rules(rules) == [Shadowed(0, 2), Shadowed(1, 3)]


def test_a_public_rule_for_every_path() -> None:
    assert public_everywhere(Rule("/", public=True))
    assert not public_everywhere(Rule("/", public=True, methods=["GET"]))
    assert not public_everywhere(Rule("/static/", public=True))
    assert not public_everywhere(Rule("/"))
