"""kwsc.evaluate."""
