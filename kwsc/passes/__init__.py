"""kwsc.passes."""
