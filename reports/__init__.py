"""The customer-success documents without HTTP.

The account brief, the KPI page, the monitor report's page; one templating module
(:mod:`reports.templating`) and one chart helper (:mod:`reports.charts`). Imports ``features``,
``training`` and ``scoring``; the service's pages and the CLI use it.
"""
