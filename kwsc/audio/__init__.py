"""kwsc.audio."""
