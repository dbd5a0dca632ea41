"""kwsc.train."""
