"""Foundations every layer shares: the error root, the clock, the database, fonts and the audit chain.

Importing it also corrects how asn1crypto reads a definite length ending in 0x80
(``core.asn1_lengths``): every layer that seals or verifies imports ``core`` first.
"""

from core.asn1_lengths import install as _install_asn1_lengths

_install_asn1_lengths()
