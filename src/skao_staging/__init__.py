"""skao-staging: the data staging service of the SKA Regional Centres."""

__version__ = "0.1.0"
