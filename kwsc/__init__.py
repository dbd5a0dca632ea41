"""kwsc: a keyword-spotter compiler (speech data → trained GRU/LSTM → graph IR → C / ELL for devices)."""

__version__ = "0.1.0"
__all__ = ["__version__"]
