"""Attributions (Captum), faithfulness scores, aggregation and rendering."""
