"""Verification of PDFs and QR codes, ending in one frozen report (ETSI EN 319 102-1 vocabulary)."""
