"""Integrations with third-party clients; each imports its client only when first used."""
