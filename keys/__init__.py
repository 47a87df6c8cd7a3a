"""Key custody behind one small protocol. Keys never leave this package; callers hold a KeyRef."""
