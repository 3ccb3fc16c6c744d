"""Which plays work, for whom, with intervals: causal effects of CSM plays on churn.

Pure functions over the snapshot table (``features``) and the ``csm_actions`` table; the
``radar effects`` command is a thin layer on top. See docs/effects.md.
"""
