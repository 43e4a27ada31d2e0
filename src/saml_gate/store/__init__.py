"""Shared state behind one small interface: replay cache, consumed request IDs, revocations.

The default :class:`MemoryStore` is per process. Several workers or hosts need a shared
implementation (Redis) so that a Response replayed to another worker is still refused.
"""

from saml_gate.store.base import Store
from saml_gate.store.memory import MemoryStore

__all__ = ["MemoryStore", "Store"]
