"""Format knowledge shared by a frontend and a backend (e.g. ELL's archive schema for the .ell reader and writer).

Modules here import only ``kwsc.ir``, numpy and the standard library, so that frontends (which must not import
backends) and backends can both use them.
"""
