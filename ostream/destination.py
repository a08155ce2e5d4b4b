"""Where the answer of generate and chat goes: stdout as it is, or through `-x` /
`--extract-last` (extract.py), or into `--output FILE` (outfile.py), or both."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ostream.errors import UsageError
from ostream.output import Writer


@contextlib.contextmanager
def answer_writer(
    writer: Writer,
    *,
    output: str | None,
    extract: bool,
    extract_last: bool,
    jsonl: bool,
    dry_run: bool = False,
) -> Iterator[Writer]:
    """The Writer for the answer. When the block ends normally (the answer completed),
    what -x held back is written and --output's file takes the place of FILE; on any
    failure FILE is left as it was. With `dry_run` the options are checked, and the
    request goes to stdout as it is."""
    if extract and extract_last:
        raise UsageError("-x and --extract-last cannot be used together")
    if (extract or extract_last) and jsonl:
        raise UsageError("-x and --extract-last take text mode: not with --jsonl")
    if dry_run or ((output is None or output == "-") and not (extract or extract_last)):
        yield writer
        return
    from ostream.outfile import atomic_output

    with (
        atomic_output(output, writer.streams)
        if output is not None and output != "-"
        else contextlib.nullcontext(writer.streams)
    ) as streams:
        if extract or extract_last:
            from ostream.extract import ExtractingWriter

            extracting = ExtractingWriter(streams, last=extract_last)
            yield extracting
            extracting.conclude()
        else:
            yield Writer(streams)
