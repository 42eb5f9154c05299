"""Accounts, tokens, WeChat and staff login, roles and region scope."""
