"""The grants that obtain tokens, one module each, behind one interface (:mod:`.base`).

``authorization_code`` (a person logs in with PKCE), ``device`` (RFC 8628: the person logs in
on another device), ``assertion`` (no person: client credentials or a JWT bearer assertion)
and ``refresh``. The flow (``flow.py``) chooses one and imports it only when it runs it.
"""
