"""Analytics keeps no tables yet: its pages read tickets through selectors (rollups come later)."""
