"""Foundations every layer shares: the error root, the clock, the database, fonts and the audit chain."""
