"""Online measurement: impressions, attribution, A/B experiments and their statistics."""
