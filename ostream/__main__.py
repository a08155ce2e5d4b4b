"""`python -m ostream`, and the `ostream` console script."""

import sys


def run() -> None:
    # Ctrl-C while the CLI is still importing must end quietly too (130, no traceback).
    try:
        from ostream.cli import main
    except KeyboardInterrupt:
        sys.exit(130)
    main()


if __name__ == "__main__":
    run()
