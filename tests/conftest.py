pytest_plugins = ["tests.postgres_plugin"]
