"""ALL-USE."""
