"""Notifications: a transactional outbox for WeChat subscribe messages, an inbox for staff."""
