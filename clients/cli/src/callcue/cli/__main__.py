"""callcue: stream calls and recordings, follow sessions, manage playbooks and keys, run the
whole system locally."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import time
from pathlib import Path

import grpc
import shtab

from callcue.call.v1 import call_pb2
from callcue.cli import credentials_file, devstack, microphone, playbook, sessions
from callcue.cli.call import stream_audio, stream_call
from callcue.cli.client_config import ClientConfig, ConfigError, add_client_flags
from callcue.cli.json_output import as_json
from callcue.cli.live_view import open_view
from callcue.cli.recording import RecordingError, read_recording
from callcue.cli.text_view import CallReport
from callcue.cli.upload import parse_roles, upload
from callcue.cli.watch import watch_session, watch_tenant
from callcue.core import api_keys, database, key_admin
from callcue.core.channel import open_channel
from callcue.core.credentials import api_key
from callcue.detector.v1 import detector_service_pb2 as detector_pb
from callcue.detector.v1 import detector_service_pb2_grpc
from callcue.gateway.v1 import gateway_service_pb2 as gateway_pb
from callcue.gateway.v1 import gateway_service_pb2_grpc
from callcue.notifier.v1 import notifier_service_pb2 as notifier_pb
from callcue.notifier.v1 import notifier_service_pb2_grpc


def say(message: str) -> None:
    print(f"callcue: {message}", flush=True)


def _channel(address: str, key: str) -> grpc.aio.Channel:
    return open_channel(address, credentials=api_key(key))


async def cmd_call(args: argparse.Namespace) -> int:
    if args.mic == (args.file is not None):
        raise ValueError("stream a FILE or --mic, one of the two")
    config = gateway_pb.CallConfig(
        interim_results=True,
        playbook_ids=args.playbook,
        title=Path(args.file).name if args.file else "microphone",
        channel_roles=parse_roles(args.stereo_roles),
        # Whose call it is: that console user (a rep) sees it, as every supervisor does.
        metadata={"rep": args.rep} if args.rep else {},
    )
    if args.mic:
        microphone.check()
    else:
        recording = read_recording(Path(args.file))
    async with ClientConfig.resolve(args).channel("gateway") as channel:
        gateway = gateway_service_pb2_grpc.GatewayServiceStub(channel)
        if args.mic:
            say("listening to the microphone; Ctrl-C ends the call")
        with open_view(sys.stdout, plain=args.plain, title=config.title) as view:
            if args.mic:
                report = await stream_audio(
                    gateway,
                    microphone.chunks(),
                    microphone.FORMAT,
                    config,
                    view,
                    started=time.monotonic(),
                )
            else:
                report = await stream_call(gateway, recording, config, view, realtime=not args.fast)
    say(f"{len(report.finals)} transcript segments, {len(report.detections)} talking points")
    return 0


async def cmd_watch(args: argparse.Namespace) -> int:
    client = ClientConfig.resolve(args)
    if args.all:
        await watch_tenant(
            lambda: client.channel("notifier"), count=args.count, json_lines=args.json
        )
        return 0
    if not args.session:
        raise ValueError("name a SESSION to watch, or --all for every live call")
    with open_view(sys.stdout, plain=args.plain or args.json, title=args.session) as view:
        await watch_session(
            lambda: client.channel("notifier"),
            args.session,
            view,
            after=args.after,
            json_lines=args.json,
        )
    return 0 if view.report.final_state != "CALL_STATE_FAILED" else 1


async def cmd_upload(args: argparse.Namespace) -> int:
    client = ClientConfig.resolve(args)
    path = Path(args.file)
    async with client.channel("gateway") as channel:
        session = await upload(
            gateway_service_pb2_grpc.GatewayServiceStub(channel),
            path,
            parse_roles(args.stereo_roles),
            playbooks=args.playbook,
            err=sys.stderr,
        )
    with open_view(sys.stdout, plain=args.plain or args.json, title=path.name) as view:
        await watch_session(lambda: client.channel("notifier"), session, view, json_lines=args.json)
    report = view.report
    if not args.json:
        say(f"{len(report.finals)} transcript segments, {len(report.detections)} talking points")
    return 0 if report.final_state == "CALL_STATE_ENDED" else 1


async def cmd_sessions(args: argparse.Namespace) -> int:
    async with ClientConfig.resolve(args).channel("gateway") as channel:
        gateway = gateway_service_pb2_grpc.GatewayServiceStub(channel)
        if args.action == "ls":
            await sessions.list_sessions(
                gateway, sys.stdout, state=args.state, limit=args.limit, json_lines=args.json
            )
        elif args.action == "show":
            await sessions.show_session(gateway, args.session, sys.stdout, json_out=args.json)
        elif args.action == "export":
            where = await sessions.export(
                gateway, args.session, args.format, args.output, sys.stdout
            )
            if args.output is not None:
                say(f"wrote {where}")
        else:
            await sessions.summary(gateway, args.session, sys.stdout, json_out=args.json)
    return 0


_PII_KINDS = {
    gateway_pb.PiiKind.Name(number).removeprefix("PII_KIND_").lower().replace("_", "-"): number
    for number in gateway_pb.PiiKind.values()
    if number
}
_ACTIONS = ("mask", "drop", "keep")


async def cmd_redaction(args: argparse.Namespace) -> int:
    async with ClientConfig.resolve(args).channel("gateway") as channel:
        gateway = gateway_service_pb2_grpc.GatewayServiceStub(channel)
        if args.action == "show":
            policy = (
                await gateway.GetRedactionPolicy(gateway_pb.GetRedactionPolicyRequest())
            ).policy
        else:
            pairs = args.changes
            if len(pairs) % 2 or not pairs:
                raise SystemExit("callcue: give KIND ACTION pairs, e.g. phone-number drop")
            rules = []
            for kind, action in zip(pairs[::2], pairs[1::2], strict=True):
                if kind not in _PII_KINDS or action not in _ACTIONS:
                    raise SystemExit(
                        f"callcue: kinds are {', '.join(_PII_KINDS)}; actions {', '.join(_ACTIONS)}"
                    )
                rules.append(
                    gateway_pb.RedactionRule(
                        kind=_PII_KINDS[kind],
                        action=gateway_pb.RedactionAction.Value(
                            f"REDACTION_ACTION_{action.upper()}"
                        ),
                    )
                )
            request = gateway_pb.UpdateRedactionPolicyRequest(rules=rules)
            policy = (await gateway.UpdateRedactionPolicy(request)).policy
        names = {number: name for name, number in _PII_KINDS.items()}
        for rule in policy.rules:
            action = gateway_pb.RedactionAction.Name(rule.action).removeprefix("REDACTION_ACTION_")
            print(f"{names[rule.kind]:<16} {action.lower()}")
    return 0


async def cmd_playbook(args: argparse.Namespace) -> int:
    async with ClientConfig.resolve(args).channel("detector") as channel:
        detector = detector_service_pb2_grpc.PlaybookServiceStub(channel)
        if args.action == "export":
            content = await playbook.export_file(detector, args.playbook_id, args.format)
            if args.output is None:
                sys.stdout.write(content.decode())
            else:
                await asyncio.to_thread(args.output.write_bytes, content)
                say(f"wrote {args.output}")
        elif args.action == "list":
            for found in await playbook.list_playbooks(detector):
                if args.json:
                    print(as_json(found))
                else:
                    count = f"{found.keyword_count:4d} keywords"
                    print(f"{found.playbook_id:<20} {count}  {found.display_name}")
        else:  # show
            request = detector_pb.GetPlaybookRequest(playbook_id=args.playbook_id)
            found = (await detector.GetPlaybook(request)).playbook
            keywords = await playbook.list_keywords(detector, found.playbook_id)
            if args.json:
                print(as_json(found))
                for keyword in keywords:
                    print(as_json(keyword))
            else:
                print(f"{found.playbook_id}: {found.display_name}, {len(keywords)} keywords")
                if found.description:
                    print(found.description)
                for keyword in keywords:
                    print(playbook.keyword_line(keyword))
    return 0


async def cmd_keyword(args: argparse.Namespace) -> int:
    async with ClientConfig.resolve(args).channel("detector") as channel:
        detector = detector_service_pb2_grpc.PlaybookServiceStub(channel)
        if args.action == "ls":
            for keyword in await playbook.list_keywords(detector, args.playbook, args.query):
                print(as_json(keyword) if args.json else playbook.keyword_line(keyword))
        elif args.action == "rm":
            await detector.DeleteKeyword(
                detector_pb.DeleteKeywordRequest(keyword_id=args.keyword_id)
            )
            say(f"keyword {args.keyword_id} deleted")
        else:  # add
            keyword = detector_pb.Keyword(
                playbook_id=args.playbook,
                phrase=args.phrase,
                aliases=args.alias,
                fuzzy_threshold=args.fuzzy,
                talking_point=call_pb2.TalkingPoint(
                    title=args.title,
                    body=args.body,
                    category=getattr(call_pb2, f"TALKING_POINT_CATEGORY_{args.category.upper()}"),
                    priority=args.priority,
                ),
            )
            created = await detector.CreateKeyword(
                detector_pb.CreateKeywordRequest(keyword=keyword)
            )
            print(as_json(created.keyword) if args.json else playbook.keyword_line(created.keyword))
    return 0


async def cmd_playbook_load(args: argparse.Namespace) -> int:
    async with ClientConfig.resolve(args).channel("detector") as channel:
        result = await playbook.import_file(
            detector_service_pb2_grpc.PlaybookServiceStub(channel),
            Path(args.file),
            replace=args.replace,
        )
    say(
        f"playbook {result.playbook.playbook_id!r}: {result.keywords_created} keywords loaded"
        + (f", {result.keywords_deleted} replaced" if args.replace else "")
    )
    return 0


async def _subscribe(stack: devstack.DevStack, key: str, session_id: str) -> list[int]:
    async with _channel(stack.address("notifier"), key) as channel:
        notifier = notifier_service_pb2_grpc.SubscriberServiceStub(channel)
        request = notifier_pb.SubscribeRequest(session_id=session_id)
        return [response.event.sequence async for response in notifier.Subscribe(request)]


async def _demo(stack: devstack.DevStack, key: str, args: argparse.Namespace) -> None:
    async with _channel(stack.address("detector"), key) as channel:
        result = await playbook.import_file(
            detector_service_pb2_grpc.PlaybookServiceStub(channel),
            Path(args.playbook_file),
            replace=True,
        )
    name = result.playbook.playbook_id
    say(f"demo playbook {name!r}: {result.keywords_created} keywords loaded")
    recording = read_recording(Path(args.sample))
    say(f"streaming {args.sample} ({recording.seconds:.1f} s) to the gateway at real-time pace")
    print(flush=True)
    config = gateway_pb.CallConfig(
        interim_results=True,
        playbook_ids=[name],
        title="demo sales call",
        # The demo rep sees it in the console; so does the demo admin, as every supervisor.
        metadata={"rep": "rep"},
    )
    async with _channel(stack.address("gateway"), key) as channel:
        gateway = gateway_service_pb2_grpc.GatewayServiceStub(channel)
        followers: list[asyncio.Task[list[int]]] = []

        def follow(session_id: str) -> None:
            # A second client follows the same call through the notifier, as a dashboard would.
            followers.append(asyncio.create_task(_subscribe(stack, key, session_id)))

        with open_view(sys.stdout, title=config.title) as view:
            report = await stream_call(gateway, recording, config, view, on_session=follow)
        followed = await asyncio.wait_for(followers[0], 30)
    print(flush=True)
    _summarise(report, followed)


def _summarise(report: CallReport, followed: list[int]) -> None:
    delays = report.detection_delays
    say(
        f"demo call {report.session_id} {report.final_state.removeprefix('CALL_STATE_').lower()}: "
        f"{len(report.finals)} final segments, {len(report.detections)} talking points, "
        f"{report.events} events"
    )
    if delays:
        say(
            "talking point delay after the words were spoken: "
            f"median {statistics.median(delays):.2f} s, max {max(delays):.2f} s"
        )
    in_order = followed == list(range(1, report.events + 1))
    say(
        f"a separate Subscribe client received {len(followed)} of {report.events} events"
        + (", in order" if in_order else ", NOT all in order")
    )


async def _dev_key(stack: devstack.DevStack, state_dir: Path) -> str:
    (state_dir / credentials_file.DEV_DATABASE_FILE.name).write_text(stack.database_url + "\n")
    pool = await database.open_pool(stack.database_url, max_size=1)
    try:
        return await credentials_file.dev_key(api_keys.ApiKeyStore(pool), state_dir)
    finally:
        await pool.close()


def cmd_admin_tool(tool: str, argv: list[str]) -> int:
    """`callcue keys ...` is callcue-keys, `callcue users ...` callcue-users and
    `callcue connectors ...` callcue-connectors, pointed at the local stack's database
    (and its telephony secrets key) by default."""
    from callcue.console import user_admin
    from callcue.telephony import connector_admin

    if "DATABASE_URL" not in os.environ and credentials_file.DEV_DATABASE_FILE.is_file():
        os.environ["DATABASE_URL"] = credentials_file.DEV_DATABASE_FILE.read_text().strip()
    secrets_key = credentials_file.DEV_DATABASE_FILE.parent / devstack.SECRETS_KEY_FILE
    if connector_admin.SECRETS_KEY not in os.environ and secrets_key.is_file():
        os.environ[connector_admin.SECRETS_KEY] = secrets_key.read_text().strip()
    tools = {"keys": key_admin.main, "users": user_admin.main, "connectors": connector_admin.main}
    tools[tool](argv)
    return 0


async def _console_logins(stack: devstack.DevStack, state_dir: Path, ready_after: float) -> None:
    from callcue.console.demo_users import ensure_demo_users

    logins = await ensure_demo_users(stack.database_url, state_dir / "console-logins")
    url = f"http://localhost:{stack.ports[devstack.CONSOLE]}/"
    say(f"  console     {url}  (ready after {ready_after:.1f} s)")
    for login in logins:
        say(f"    sign in as {login.username!r} ({login.role}), password {login.password!r}")
    say(f"    (kept in {state_dir / 'console-logins'}; `uv run callcue users --help` adds people)")


async def cmd_dev_up(args: argparse.Namespace) -> int:
    state_dir = args.state_dir
    base = int(os.environ.get("CALLCUE_DEV_PORT_BASE", "50051"))
    console_port = int(os.environ.get("CALLCUE_DEV_CONSOLE_PORT", "8080"))
    telephony_port = int(os.environ.get("CALLCUE_DEV_TELEPHONY_PORT", "8090"))
    database_url, postgres = await devstack.ensure_database(state_dir, say)
    stack = devstack.DevStack(
        devstack.ports_from(base, console_port, telephony_port),
        database_url,
        devstack.telephony_secrets_key(state_dir),
        devstack.service_keys(state_dir),
    )
    started = time.monotonic()
    services: tuple[str, ...] = (*devstack.SERVICES, devstack.TELEPHONY)
    if devstack.console_built(Path.cwd()):
        services = (*services, devstack.CONSOLE)
    processes = devstack.start_services(stack, state_dir / "logs", services)
    try:
        ready = await devstack.wait_until_serving(stack, processes)
        for service in devstack.SERVICES:
            address = stack.address(service)
            say(f"  {service:<11} serving on {address}  (ready after {ready[service]:.1f} s)")
        telephony = f"ws://localhost:{stack.ports[devstack.TELEPHONY]}"
        say(
            f"  telephony   {telephony}/{{twilio,audiohook,freeswitch}}/<connector>  "
            f"(ready after {ready[devstack.TELEPHONY]:.1f} s; `uv run callcue connectors --help`)"
        )
        say(f"              ConnectorService (gRPC) on {stack.address(devstack.TELEPHONY_GRPC)}")
        elapsed = time.monotonic() - started
        say(f"all services ready in {elapsed:.1f} s; logs in {state_dir / 'logs'}")
        key = await _dev_key(stack, state_dir)
        say(f"API key of tenant {api_keys.DEFAULT_TENANT!r} in {state_dir / 'api-key'}")
        if devstack.CONSOLE in services:
            await _console_logins(stack, state_dir, ready[devstack.CONSOLE])
        else:
            say(
                "the console is not built: install Node.js 20 with npm, then `make install` "
                "(everything else runs without it)"
            )
        if args.demo:
            await _demo(stack, key, args)
        if args.exit:
            return 0
        say(
            "the services stay up for other clients, for example:\n"
            f"    grpcurl -plaintext {stack.address('gateway')} list\n"
            f"    uv run callcue call samples/sales_call.wav --playbook sales\n"
            f"    uv run callcue keys create my-team   # a key for another tenant\n"
            "Press Ctrl-C to stop them."
        )
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
        await stopping.wait()
        return 0
    finally:
        say("stopping the services")
        devstack.stop_services(processes)
        if postgres is not None:
            postgres.cleanup()


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="callcue", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    client = argparse.ArgumentParser(add_help=False)
    add_client_flags(client)
    reader = argparse.ArgumentParser(add_help=False)
    reader.add_argument("--json", action="store_true", help="JSON output, for scripts")
    viewer = argparse.ArgumentParser(add_help=False)
    viewer.add_argument(
        "--plain", action="store_true", help="plain lines instead of the live screen"
    )

    call = commands.add_parser(
        "call",
        parents=[client, viewer],
        help="stream a recording (WAV, FLAC, MP3, M4A, Ogg, ...) as a live call",
    )
    call.add_argument("file", nargs="?")
    call.add_argument("--mic", action="store_true", help="the microphone instead of a file")
    call.add_argument("--playbook", action="append", default=[], help="playbook id (repeatable)")
    call.add_argument("--fast", action="store_true", help="send as fast as possible")
    call.add_argument("--rep", default="", help="the console user whose call this is")
    call.add_argument(
        "--stereo-roles", default="", help="role of each channel, for example rep,prospect"
    )
    call.set_defaults(run=cmd_call)

    watch = commands.add_parser(
        "watch",
        parents=[client, reader, viewer],
        help="follow a session (or --all live calls) as it happens; resumes after drops",
    )
    watch.add_argument("session", nargs="?")
    watch.add_argument("--all", action="store_true", help="every session of your tenant")
    watch.add_argument("--after", type=int, default=0, help="skip events up to this sequence")
    watch.add_argument("--count", type=int, default=0, help="with --all: stop after N events")
    watch.set_defaults(run=cmd_watch)

    up = commands.add_parser(
        "upload",
        parents=[client, reader, viewer],
        help="upload a recording (wav, flac, mp3, m4a, ogg, webm), then show its transcript",
    )
    up.add_argument("file")
    up.add_argument("--playbook", action="append", default=[], help="playbook id (repeatable)")
    up.add_argument(
        "--stereo-roles", default="", help="role of each channel, for example rep,prospect"
    )
    up.set_defaults(run=cmd_upload)

    listing = commands.add_parser("sessions", help="list, show and export sessions")
    listing_commands = listing.add_subparsers(dest="action", required=True)
    ls = listing_commands.add_parser("ls", parents=[client, reader], help="newest first")
    ls.add_argument("--state", choices=sorted(sessions.STATES), default="")
    ls.add_argument("--limit", type=int, default=20)
    show = listing_commands.add_parser("show", parents=[client, reader], help="one session")
    show.add_argument("session")
    export = listing_commands.add_parser(
        "export", parents=[client], help="the transcript as SubRip, WebVTT or JSON"
    )
    export.add_argument("session")
    export.add_argument("--format", choices=sorted(sessions.FORMATS), default="vtt")
    export.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    listing.set_defaults(run=cmd_sessions)
    summary = commands.add_parser(
        "summary",
        parents=[client, reader],
        help="duration, talk time per speaker, talking points, keyword counts",
    )
    summary.add_argument("session")
    summary.set_defaults(run=cmd_sessions, action="summary")

    redaction = commands.add_parser(
        "redaction", help="what transcripts keep of the personal data said on calls (admin)"
    )
    redaction_commands = redaction.add_subparsers(dest="action", required=True)
    redaction_commands.add_parser("show", parents=[client], help="each kind and its action")
    redaction_set = redaction_commands.add_parser(
        "set",
        parents=[client],
        help="change kinds' actions: KIND ACTION ... (mask, drop or keep; cards and ssns "
        "are never kept)",
    )
    redaction_set.add_argument("changes", nargs="+", metavar="KIND ACTION")
    redaction.set_defaults(run=cmd_redaction)

    book = commands.add_parser("playbook", help="manage playbooks")
    book_commands = book.add_subparsers(dest="action", required=True)
    load = book_commands.add_parser(
        "import",
        aliases=["load"],
        parents=[client],
        help="create a playbook from a YAML or JSON file (all of it, or nothing)",
    )
    load.add_argument("file")
    load.add_argument(
        "--replace", action="store_true", help="replace the playbook if it exists already"
    )
    load.set_defaults(run=cmd_playbook_load)
    exporting = book_commands.add_parser(
        "export", parents=[client], help="a playbook as a YAML or JSON file"
    )
    exporting.add_argument("playbook_id")
    exporting.add_argument("--format", choices=("yaml", "json"), default="yaml")
    exporting.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    exporting.set_defaults(run=cmd_playbook)
    book_list = book_commands.add_parser("list", parents=[client, reader], help="your playbooks")
    book_list.set_defaults(run=cmd_playbook)
    book_show = book_commands.add_parser(
        "show", parents=[client, reader], help="a playbook and its keywords"
    )
    book_show.add_argument("playbook_id")
    book_show.set_defaults(run=cmd_playbook)

    word = commands.add_parser("keyword", help="add, remove and list keywords")
    word_commands = word.add_subparsers(dest="action", required=True)
    word_ls = word_commands.add_parser("ls", parents=[client, reader], help="list keywords")
    word_ls.add_argument("--playbook", default="", help="only this playbook's")
    word_ls.add_argument("--query", default="", help="only those mentioning this text")
    word_rm = word_commands.add_parser("rm", parents=[client], help="delete a keyword by id")
    word_rm.add_argument("keyword_id")
    word_add = word_commands.add_parser(
        "add", parents=[client, reader], help="a phrase and the talking point it shows"
    )
    word_add.add_argument("phrase")
    word_add.add_argument("--title", required=True, help="the talking point's title")
    word_add.add_argument("--body", default="", help="the talking point, in Markdown")
    word_add.add_argument("--playbook", default="default")
    word_add.add_argument("--alias", action="append", default=[], help="another wording")
    word_add.add_argument(
        "--category",
        default="other",
        choices=(
            "competitor",
            "objection",
            "pricing",
            "next_step",
            "compliance",
            "product",
            "other",
        ),
    )
    word_add.add_argument("--priority", type=int, default=0)
    word_add.add_argument(
        "--fuzzy", type=float, default=0.0, help="also match near spellings (0.85 is a start)"
    )
    word.set_defaults(run=cmd_keyword)

    dev = commands.add_parser("dev", help="run the whole system on this machine")
    dev_commands = dev.add_subparsers(dest="action", required=True)
    up = dev_commands.add_parser(
        "up",
        help="start PostgreSQL (embedded unless DATABASE_URL), the four services and the console",
    )
    up.add_argument(
        "--demo", action="store_true", help="load the demo playbook and stream the sample call"
    )
    up.add_argument("--exit", action="store_true", help="stop after the demo instead of staying up")
    up.add_argument("--state-dir", default=".run", type=lambda value: Path(value).absolute())
    up.add_argument("--sample", default="samples/sales_call.wav")
    up.add_argument("--playbook-file", default="playbooks/sales.yaml")
    up.set_defaults(run=cmd_dev_up)

    completion = commands.add_parser(
        "completion", help='print a shell completion script: eval "$(callcue completion bash)"'
    )
    completion.add_argument("shell", choices=("bash", "zsh", "tcsh"))
    completion.set_defaults(run=cmd_completion)

    commands.add_parser(
        "keys",
        add_help=False,
        help="create, list and revoke API keys (callcue keys --help)",
    )
    commands.add_parser(
        "users",
        add_help=False,
        help="add, list and remove people who sign in to the console (callcue users --help)",
    )
    commands.add_parser(
        "connectors",
        add_help=False,
        help="add, list and remove phone-system connectors (callcue connectors --help)",
    )
    return root


async def cmd_completion(args: argparse.Namespace) -> int:
    print(shtab.complete(parser(), shell=args.shell))
    return 0


def _explain(error: grpc.aio.AioRpcError) -> str:
    code, details = error.code(), error.details() or ""
    if code == grpc.StatusCode.UNAVAILABLE:
        return (
            f"cannot reach the server ({details}); check the address (--gateway, --notifier, "
            "--detector or the config file), or start the local stack with `make run`"
        )
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return f"the server refused the API key: {details}"
    if code == grpc.StatusCode.NOT_FOUND:
        return f"not found: {details}"
    return f"{code.name}: {details}"


def main() -> None:
    if sys.argv[1:2] in (["keys"], ["users"], ["connectors"]):
        raise SystemExit(cmd_admin_tool(sys.argv[1], sys.argv[2:]))
    args = parser().parse_args()
    try:
        code = asyncio.run(args.run(args))
    except (
        credentials_file.NoApiKey,
        ConfigError,
        microphone.NoMicrophone,
        RecordingError,
        ValueError,
        OSError,
    ) as error:
        print(f"callcue: {error}", file=sys.stderr)
        code = 2
    except grpc.aio.AioRpcError as error:
        print(f"callcue: {_explain(error)}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 130
    raise SystemExit(code)


if __name__ == "__main__":
    main()
