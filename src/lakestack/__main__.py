"""``python -m lakestack``."""

from lakestack.cli.main import main

if __name__ == "__main__":
    main()
