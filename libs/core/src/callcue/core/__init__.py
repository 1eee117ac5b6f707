"""What every callcue service shares: settings, logging, server bootstrap, errors, database."""
