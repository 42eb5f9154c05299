"""Media: photo proofs checked and re-encoded (images), kept behind one storage module (storage), and
served only through expiring signed links (signing). Nothing here knows about HTTP requests."""
