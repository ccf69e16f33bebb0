pytest_plugins = ["tests.postgres_plugin", "tests.s3_plugin"]
