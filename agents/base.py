"""Moved to `dishbrain.player`; this re-export goes once every importer is converted."""

from dishbrain.player import Agent, SessionStopped, Stepper

__all__ = ["Agent", "SessionStopped", "Stepper"]
