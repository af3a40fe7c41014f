"""pytest-vmsnap: prove VM-backup quiesce scripts correct before a restore depends on them."""

__version__ = "0.1.0"
