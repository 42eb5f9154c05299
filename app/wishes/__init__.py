"""Wishes (微心愿): lifecycle, moderation and the public feed."""
