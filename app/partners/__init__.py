"""Partner systems (医保, 残联, 公安, ...): OAuth 2.0 clients that send signals about people.

A partner client authenticates with its id and secret (client-credentials grant, RFC 6749 §4.4)
for a short-lived access token (app/partners/tokens.py), which it sends as a Bearer token to the
partner routes. The OAuth protocol itself (the token endpoint) lives at the HTTP edge
(miniprogram_api/oauth.py); this package holds the clients, their secrets and their tokens.
"""
