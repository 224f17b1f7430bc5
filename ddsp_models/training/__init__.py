"""Training utilities: data providers (`data`), trainers, metrics and evaluators."""
