"""Departments' electronic seals (电子印章): registry, images, and applying a seal to a PDF."""
