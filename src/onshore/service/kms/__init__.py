"""Key management: tenant keys under the operator's root key, and the data keys they wrap."""
