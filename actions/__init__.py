"""Calls to action: the work a customer-success manager is handed, and what was done with it.

A work-item store (SQLAlchemy, Alembic migrations shipped here) fed by each scoring run:
CTAs opened per account and cause, escalated when nobody answers, closed when the cause has
cleared; every change an event; notifications through an outbox. It reads scoring records
(plain data frames) and never the service; the service and the ``radar`` command read it.
"""
