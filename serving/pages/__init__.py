"""The CSM pages of the service (portfolio, account, brief, KPIs, monitor) and their views."""
