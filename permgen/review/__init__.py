"""``permgen review``: compile a spec at two git revisions, diff every role, report."""
