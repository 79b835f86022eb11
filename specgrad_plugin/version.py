# The package's version; CHANGELOG.md gives each version's date and changes.
# Between releases: the next version's development release (PEP 440), so that an install of
# unreleased code (new shipped models included) never reports the last release's number.
__version__ = "0.3.0.dev0"
