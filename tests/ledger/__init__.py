"""Tests of the open ledger."""
