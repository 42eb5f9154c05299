"""The 505 fund (505公益基金): double-entry books in fen, money donations paid through WeChat Pay,
disbursements approved by two moderators, reversals, and an audit of it all.

Modules: `models` (tables), `books` (postings and derived balances), `donations` (orders),
`payments` (settling a paid order, from a notification or reconciliation), `reconcile` (the
periodic check of pending orders), `disbursements`, `reversals`, `audit` (operators' checks).
"""
