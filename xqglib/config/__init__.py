"""Settings: the schema (one dataclass per concern, checked before any work), overrides, the
languages every benchmark uses, and the three profiles (smoke, cpu, paper)."""
