"""Development tools that are not part of the app (`make run`'s process supervisor)."""
