"""The built-in schedulers of `dump`: ucb (DUMP's curriculum), uniform, sequential, thompson.

Installed as the package `dump_schedulers`. Each module holds one `Scheduler` subclass and its
options dataclass, and registers through the `dumpcli.schedulers` entry points in pyproject.toml,
exactly as a third-party package would; nothing here is imported until a scheduler is looked up.
"""
