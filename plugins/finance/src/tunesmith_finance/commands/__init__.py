"""The ``tunesmith finance`` commands, one module per command, each with ``register(app)``;
``options``, ``checks`` and ``output`` hold what several of them share. ``tunesmith_finance.cli``
builds the group. Heavy libraries are imported inside the commands, never at module level.
"""
