"""`python -m ostream`, and the `ostream` console script."""

# The C half of `signal`: `import signal` would import enum first (several ms), and
# until run()'s first statement a Ctrl-C raises KeyboardInterrupt in whatever is
# importing (a traceback).
import _signal  # type: ignore[import-not-found]


def run() -> None:
    # First of all: until a command takes Ctrl-C over (signals.cancellable), SIGINT has
    # its default action, so a Ctrl-C while Python imports ostream, Typer and Click, or
    # parses the command line, ends the process by the signal at once: status 130,
    # no traceback, nothing to clean up yet. A SIGINT the caller ignores stays ignored.
    if _signal.getsignal(_signal.SIGINT) != _signal.SIG_IGN:
        _signal.signal(_signal.SIGINT, _signal.SIG_DFL)

    from ostream.errors import classify
    from ostream.signals import exit_process, quiet_unraisable

    quiet_unraisable()
    try:
        from ostream.cli import main
    except KeyboardInterrupt as exc:  # not from a SIGINT (it has no Python handler now)
        exit_process(classify(exc).code)
    exit_process(main())


if __name__ == "__main__":
    run()
