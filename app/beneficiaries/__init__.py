"""People behind the wishes: identity encrypted at rest, consent records, access audit."""
