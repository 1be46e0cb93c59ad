"""genpulse worker: Faust agents that aggregate events into windowed tables and budgets."""
