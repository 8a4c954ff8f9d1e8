"""The whole quick start on one machine: ``python -m examples.demo`` (see ``__main__``)."""
