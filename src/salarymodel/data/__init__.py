"""Sources to canonical, validated records: adapters, derivations, geography, titles."""
