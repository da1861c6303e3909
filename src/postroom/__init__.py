"""Postroom: the mail-server and e-mail-account hub that business applications plug into.

The flow reads from the folder names: configure (services/accounts) → test (services/checks)
→ queue (services/outbox) → deliver (services/delivery) → fetch (services/fetching) → view
(api/, web/, cli/).
"""

__version__ = "0.1.0"
