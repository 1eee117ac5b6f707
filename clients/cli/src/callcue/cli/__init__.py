"""The callcue command line."""
