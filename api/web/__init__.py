"""The browser side served by the API: the dashboard page and the event collector script."""
