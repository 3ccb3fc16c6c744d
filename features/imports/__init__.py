"""Import presets: vendor exports (CRM, billing, support, product analytics) to the contract.

A mapping (:mod:`features.imports.mapping`) says, per export file, which contract table it
feeds and how each contract column is read from it; the presets in ``presets/`` are such
mappings for the tools seed 002 names, and a team writes its own in the same format. The
engine (:mod:`features.imports.engine`) reads the exports with DuckDB, applies the mappings,
joins the sources on one account key and writes the contract folder atomically.
"""
