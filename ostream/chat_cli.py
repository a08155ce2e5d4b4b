"""`ostream chat`: one chat turn, or with -i a conversation on a terminal.

Registered on the app by cli.py, as fleet_cli registers models/ps/pull; loads only
what cli.py loads already, the rest when the command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ostream import request
from ostream.arguments import argument_text
from ostream.environment import Environment
from ostream.errors import UsageError
from ostream.output import Writer
from ostream.params import (
    DryRun,
    Extract,
    ExtractLast,
    Format,
    HideThinking,
    Host,
    Images,
    Jsonl,
    KeepAlive,
    MessageWords,
    Model,
    ModelOptions,
    OutputFile,
    PresetName,
    PresetVars,
    Resume,
    Retries,
    Run,
    System,
    Think,
    TimeoutSeconds,
    Verbose,
)


def register(app: typer.Typer, run: Run) -> None:
    """Add `chat` to `app`; `run` runs an action as cli.py does."""

    @app.command()
    def chat(
        ctx: typer.Context,
        message: MessageWords = None,
        preset: PresetName = None,
        var: PresetVars = None,
        model: Model = None,
        system: System = None,
        history_name: Annotated[
            str | None,  # not Path: Path("") would be ".", and the empty name must be refused
            typer.Option(
                "--history",
                metavar="FILE",
                help="JSONL conversation: sent first; the new turn is appended once it completes.",
            ),
        ] = None,
        continue_last: Annotated[
            bool,
            typer.Option(
                "-c",
                "--continue",
                help="Continue the last chat run without --history (kept unless "
                "OSTREAM_NOHISTORY).",
            ),
        ] = False,
        messages: Annotated[
            str | None,
            typer.Option(
                "--messages",
                metavar="FILE",
                help="A whole conversation (JSONL or JSON array; - for stdin), sent as it is.",
            ),
        ] = None,
        tools: Annotated[
            Path | None,
            typer.Option(
                "--tools", metavar="FILE", help="JSON array of tool schemas the model may call."
            ),
        ] = None,
        option: ModelOptions = None,
        format: Format = None,
        think: Think = None,
        hide_thinking: HideThinking = False,
        keep_alive: KeepAlive = None,
        image: Images = None,
        jsonl: Jsonl = False,
        verbose: Verbose = False,
        host: Host = None,
        timeout: TimeoutSeconds = None,
        retries: Retries = "2",
        resume: Resume = False,
        interactive: Annotated[
            bool,
            typer.Option(
                "-i",
                "--interactive",
                help="Talk on a terminal: a prompt for each turn, slash commands (/help);"
                " MESSAGE, if given, is the first turn.",
            ),
        ] = False,
        output: OutputFile = None,
        extract: Extract = False,
        extract_last: ExtractLast = False,
        dry_run: DryRun = False,
    ) -> None:
        """Stream the reply to one chat turn (POST /api/chat).

        The MESSAGE words (and piped stdin, first) form the user message; with -i,
        an interactive conversation on a terminal.
        """

        def action(env: Environment, writer: Writer) -> None:
            from ostream import lastchat
            from ostream.conversation import load_conversation, user_turn
            from ostream.history import save_turn
            from ostream.inputs import load_tools, read_images
            from ostream.run import stream_answer

            if interactive and not (env.stdin_tty and env.stdout_tty):
                raise UsageError("-i needs a terminal on stdin and stdout")
            if interactive and jsonl:
                raise UsageError("-i shows text: --jsonl cannot be used with it")
            request.check_resume(resume, jsonl)
            if history_name is not None and messages is not None:
                raise UsageError("--history and --messages cannot be used together")
            if continue_last and (history_name is not None or messages is not None):
                raise UsageError("-c continues the last chat: not with --history or --messages")
            history = lastchat.to_continue(env.environ) if continue_last else None
            history = history or request.history_path(history_name)
            images = [str(p) for p in image or []]
            if "-" in images and messages == "-":
                raise UsageError("--image - and --messages - cannot both read stdin")
            target = request.target(env, host, timeout, retries)
            found = request.load_preset(env, preset, var)
            body = request.common_body(env, model, option, format, think, keep_alive, found)
            conversation = load_conversation(messages, history, env.piped_stdin, env.environ)
            use_stdin = messages != "-" and "-" not in images
            preset_system = None
            if found is None:
                text = request.prompt(env, message, use_stdin=use_stdin)
            else:
                preset_system, text = request.preset_turn(env, found, message, var, use_stdin)
            if interactive:
                if output is not None or extract or extract_last or dry_run:
                    raise UsageError(
                        "-i: --output, -x, --extract-last and --dry-run are for one turn"
                    )
            elif text is None and not conversation:
                raise UsageError("nothing to send: the conversation is empty and no MESSAGE given")
            elif text is None and messages is None:
                raise UsageError("no message: give MESSAGE words or pipe text on stdin")
            turn = user_turn(
                text, read_images(images, env.piped_stdin, env.environ) if images else []
            )
            if not interactive:
                prefix = []
                if system is not None:
                    prefix = [{"role": "system", "content": argument_text(system, "-s")}]
                elif preset_system is not None:  # sent, never stored: as -s
                    prefix = [{"role": "system", "content": preset_system}]
                body["messages"] = prefix + conversation + turn
            if tools is not None:
                body["tools"] = load_tools(str(tools), env.environ)
            if found is not None:
                found.apply_defaults(body, tools=True)
            if interactive:
                from ostream.interactive import Settings, interact

                system_prompt = argument_text(system, "-s") if system is not None else preset_system
                settings = Settings(
                    target,
                    body,
                    system_prompt,
                    show_thinking=not hide_thinking,
                    verbose=verbose,
                    resume=resume,
                )
                interact(env, writer, settings, conversation, history, turn)
                return
            from ostream.destination import answer_writer

            with answer_writer(
                writer,
                output=output,
                extract=extract,
                extract_last=extract_last,
                jsonl=jsonl,
                dry_run=dry_run,
            ) as out:
                if dry_run:
                    from ostream.dryrun import show_target_request

                    return show_target_request(out, target, "/api/chat", body)
                reply = stream_answer(
                    target,
                    "chat",
                    body,
                    out,
                    jsonl=jsonl,
                    show_thinking=not hide_thinking,
                    keep=history is not None or lastchat.kept(env.environ),
                    verbose=verbose,
                    resume=resume,
                )
            if history is not None:
                save_turn(history, [*turn, reply.message()])
            else:
                lastchat.keep(env.environ, [*conversation, *turn, reply.message()])

        run(ctx, action)
