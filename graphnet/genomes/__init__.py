"""Shipped genome files (package data); see graphnet/rules/shipped.py."""
