"""Diagnostics: the gradient monitor (statistics), the flag rules, and advice tied to the config."""
