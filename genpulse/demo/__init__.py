"""Demo traffic: a seeded model of the generator's sessions and a driver for the SDK."""

from genpulse.demo.driver import DriveResult, apply, drive
from genpulse.demo.workload import Action, Workload, event_type, sends_event

__all__ = ["Action", "DriveResult", "Workload", "apply", "drive", "event_type", "sends_event"]
