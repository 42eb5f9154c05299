"""Claims (认领) and the 48-hour promise."""
