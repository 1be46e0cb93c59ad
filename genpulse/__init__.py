"""genpulse command line and local development services (not imported by the SDK)."""
