"""Access policy: the rules (values, text form), the request line the app will act on, and the
decision of which rule applies and whether a person meets it.

* :mod:`~saml_gate.policy.rules`: :class:`Rule`, its text form;
* :mod:`~saml_gate.policy.request_line`: methods, overrides and paths as the app will read them;
* :mod:`~saml_gate.policy.access`: :class:`AccessPolicy`, the decision.

The package imports nothing of the gate's HTTP face (``web/``), so settings may hold rules.
"""

from saml_gate.policy.access import (
    ANY_OTHER_METHOD,
    DEFAULT_RULE,
    PASS_THROUGH,
    AccessPolicy,
    AllOf,
    Decision,
    Route,
)
from saml_gate.policy.request_line import canonical_path
from saml_gate.policy.rules import SETTING, Rule, as_rule, parse_rules

__all__ = [
    "ANY_OTHER_METHOD",
    "DEFAULT_RULE",
    "PASS_THROUGH",
    "SETTING",
    "AccessPolicy",
    "AllOf",
    "Decision",
    "Route",
    "Rule",
    "as_rule",
    "canonical_path",
    "parse_rules",
]
