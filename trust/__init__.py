"""The PKI of one trust domain: CA hierarchy, certificate profiles, CRLs, trust roots."""
