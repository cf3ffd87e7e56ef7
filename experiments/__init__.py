"""Experiments: configs, units, the fault-tolerant runner, reports and the ``pnyx`` CLI."""
