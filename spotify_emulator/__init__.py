"""Spotify accounts-service and Web API emulator for Earworm tests and demo mode (never imported by earworm/)."""
