"""``python -m saml_gate.cli``: the ``saml-gate`` command."""

from saml_gate.cli import main

raise SystemExit(main())
