# The package's version; CHANGELOG.md gives each version's date and changes.
__version__ = "0.2.0"
