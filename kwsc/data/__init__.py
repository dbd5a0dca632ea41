"""kwsc.data."""
