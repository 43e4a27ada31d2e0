"""Operating the gate: auth events, metrics, logs, warnings, self-check, status, setup sheet."""
