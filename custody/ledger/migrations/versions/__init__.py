"""The migrations, oldest first: ``r0001_initial`` is the schema as it was before migrations."""
