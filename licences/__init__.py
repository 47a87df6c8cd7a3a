"""The licence repository (电子证照库): catalogue, identifiers, lifecycle, rendering, QR payloads."""
