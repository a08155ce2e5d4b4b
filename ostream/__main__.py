"""`python -m ostream`, and the `ostream` console script."""

import sys

from ostream.errors import classify


def run() -> None:
    # Ctrl-C while the CLI is still importing must end quietly too (130, no traceback).
    try:
        from ostream.cli import main
    except KeyboardInterrupt as exc:
        sys.exit(classify(exc).code)
    sys.exit(main())


if __name__ == "__main__":
    run()
