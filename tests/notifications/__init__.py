"""Notifications: the WeChat client, the outbox relay, subscribe credits and the staff inbox."""
