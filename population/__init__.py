"""Population dynamics on graphs and metrics of cooperation and agreement."""
