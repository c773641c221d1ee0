"""Scenario files shipped with vpp (package data)."""
