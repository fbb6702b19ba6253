"""Small shared helpers: seeding, atomic file output, input validation, memory and reporting."""
