"""`ostream chat -i`: a conversation on a terminal, one streamed reply per turn.

A turn becomes part of the conversation (and of the --history file) only once its
reply completed. Ctrl-C during a reply closes the connection (stream_answer does,
on every path) and gives the prompt back with the user's text in it; any other
failure of a turn is told in one line and the session goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ostream.environment import Environment
from ostream.errors import FAILURES, ExitCode, Failure
from ostream.guard import report
from ostream.history import save_turn
from ostream.output import Writer, write_error
from ostream.run import Target, stream_answer
from ostream.stream import Reply


@dataclass
class Settings:
    """What every request of the session starts from; slash commands change it."""

    target: Target
    body: dict[str, Any]  # model, stream, options, format, think, keep_alive, tools
    system: str | None = None
    show_thinking: bool = True
    verbose: bool = False
    resume: bool = False


@dataclass
class Cut:
    """The last turn, when its reply did not complete: the user message and the
    text the reply had reached (what /continue goes on from)."""

    user: dict[str, Any]
    partial: str = ""


class Interrupted(Exception):
    """Ctrl-C during a reply: the prompt comes back with the user's text."""


@dataclass
class Session:
    env: Environment
    writer: Writer
    settings: Settings
    messages: list[dict[str, Any]] = field(default_factory=list)
    path: Path | None = None  # the conversation file: each completed turn is saved there
    cut: Cut | None = None
    unsaved: list[dict[str, Any]] = field(default_factory=list)  # turns a save failed for

    def say(self, text: str) -> None:
        """A message of the session itself, on stderr."""
        self.writer.info(text if text.endswith("\n") else text + "\n")

    def error(self, message: str) -> None:
        write_error(self.env, message)

    # ---- turns

    def send(self, user: dict[str, Any]) -> None:
        """A new user message and its reply."""
        reply = self._ask(self.messages, user, cut=user)
        if reply is not None:
            self._complete([user, reply.message()])

    def retry(self) -> None:
        """Ask the last user message again: the cut turn's, else the last completed
        turn's, whose reply the new one replaces."""
        if self.cut is not None:
            self.send(self.cut.user)
            return
        if len(self.messages) < 2 or self.messages[-1].get("role") != "assistant":
            self.say("ostream: nothing to retry")
            return
        old = self.messages[-2:]
        before = self.messages[:-2]
        reply = self._ask(before, old[0])
        if reply is not None:
            self.messages = before
            self._complete([old[0], reply.message()], replacing=old)

    def continue_reply(self) -> None:
        """Go on with the last reply: the cut one, else the last completed one (a reply
        that stopped at its length limit)."""
        from ostream.resume import continuation

        if self.cut is not None:
            user, partial = self.cut.user, self.cut.partial
            if not partial:
                self.send(user)
                return
            body = continuation("chat", self._body(self.messages, user), partial)
            reply = self._ask(self.messages, user, body=body, cut=user, partial=partial)
            if reply is not None:
                self._complete([user, _joined(partial, reply)])
            return
        if not self.messages or self.messages[-1].get("role") != "assistant":
            self.say("ostream: no reply to continue")
            return
        old = self.messages[-1]
        content = old.get("content")
        partial = content if isinstance(content, str) else ""
        body = continuation("chat", self._body(self.messages[:-1], None), partial)
        reply = self._ask(self.messages[:-1], None, body=body)
        if reply is not None:
            self.messages = self.messages[:-1]
            self._complete([_joined(partial, reply, old)], replacing=[old])

    def _body(self, before: list[dict[str, Any]], user: dict[str, Any] | None) -> dict[str, Any]:
        prefix = []
        if self.settings.system is not None:
            prefix = [{"role": "system", "content": self.settings.system}]
        turn = [user] if user is not None else []
        return {**self.settings.body, "messages": [*prefix, *before, *turn]}

    def _ask(
        self,
        before: list[dict[str, Any]],
        user: dict[str, Any] | None,
        *,
        body: dict[str, Any] | None = None,
        cut: dict[str, Any] | None = None,
        partial: str = "",
    ) -> Reply | None:
        """Stream one reply; None when it failed (said in one line). Raises Interrupted
        on Ctrl-C, and whatever ends the session (SIGTERM, stdout gone). A failed
        reply to `cut`, a user message not in the conversation, is the cut turn."""
        reply = Reply()
        try:
            stream_answer(
                self.settings.target,
                "chat",
                body if body is not None else self._body(before, user),
                self.writer,
                show_thinking=self.settings.show_thinking,
                keep=True,
                verbose=self.settings.verbose,
                resume=self.settings.resume,
                reply=reply,
            )
        except FAILURES as exc:
            if cut is not None:
                self.cut = Cut(cut, partial + reply.message()["content"])
            if isinstance(exc, KeyboardInterrupt):
                if _ends_a_line(reply, self.settings.show_thinking):
                    self.writer.text("\n")  # the echoed ^C gets a line of its own
                raise Interrupted from None
            report(exc, self.env, _with_model_hint)
            return None
        self.cut = None
        return reply

    def _complete(
        self, turn: list[dict[str, Any]], replacing: list[dict[str, Any]] | None = None
    ) -> None:
        """A completed turn joins the conversation, and its file when there is one."""
        self.messages.extend(turn)
        if self.path is None:
            return
        try:
            save_turn(self.path, [*self.unsaved, *turn], replacing=replacing)
        except FAILURES as exc:
            report(exc, self.env, lambda f: f"{f.message} (it is kept for the next save)")
            self.unsaved.extend(turn)
        else:
            self.unsaved = []


def _with_model_hint(failure: Failure) -> str:
    hint = "; or switch with /model NAME" if failure.code == ExitCode.MODEL_NOT_FOUND else ""
    return f"{failure.message}{hint}"


def _ends_a_line(reply: Reply, thinking_shown: bool) -> bool:
    """Whether what `reply` showed ended its line, or nothing was shown (Ctrl-C while
    waiting for the first token): the terminal's ^C then starts a line nobody ends,
    where after text the newline that ends the cut answer ends it too."""
    message = reply.message()
    shown = message["content"] or (message.get("thinking", "") if thinking_shown else "")
    return not shown or shown.endswith("\n")


def _joined(partial: str, reply: Reply, old: dict[str, Any] | None = None) -> dict[str, Any]:
    """The assistant message of a continued reply: the text before and the new text."""
    message = {**(old or {}), **reply.message()}
    message["content"] = partial + message["content"]
    return message


def interact(
    env: Environment,
    writer: Writer,
    settings: Settings,
    conversation: list[dict[str, Any]],
    history: Path | None,
    first: list[dict[str, Any]],
) -> None:
    """Run the session until Ctrl-D or /bye; `first`: the MESSAGE words' turn, if any."""
    from ostream.lineinput import LineReader
    from ostream.slash import Bye, run_command

    session = Session(env, writer, settings, list(conversation), history)
    reader = LineReader(env, settings.target)
    line = ""
    if first:
        line = _take(first[0].get("content", ""), session.send, first[0])
    while True:
        try:
            text = reader.read(line)
        except EOFError:
            return
        except KeyboardInterrupt:  # Ctrl-C at the prompt: a clean line
            line = ""
            continue
        line = ""
        if not text.strip():
            continue
        if text.startswith("/") and not text.startswith("//"):
            try:
                line = _take(text, run_command, session, reader, text)
            except Bye:
                return
            continue
        user = {"role": "user", "content": text[1:] if text.startswith("//") else text}
        line = _take(text, session.send, user)


def _take(text: str, turn: Callable[..., object], *args: Any) -> str:
    """Run `turn(*args)` for the line `text`; what the next prompt's input line holds:
    `text` after a Ctrl-C, a string `turn` returned (/edit), else nothing."""
    try:
        result = turn(*args)
    except (Interrupted, KeyboardInterrupt):  # a reply, or a slash command's own work
        return text
    return result if isinstance(result, str) else ""
