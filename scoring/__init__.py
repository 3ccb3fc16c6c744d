"""Scoring: a model and dated snapshot rows in, records out.

The records (scores, reasons, plays), the plays' configuration, the portfolio summary and
what-if, the dated snapshot every command scores (:mod:`scoring.snapshot`), and the batch and
Spark jobs. Used by the CLI, the service, the reports and monitoring; imports only ``features``
and ``training``.
"""
