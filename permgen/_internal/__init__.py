"""Helpers with no product knowledge: atomic files, bounded JSON, forked workers, the SARIF envelope."""
