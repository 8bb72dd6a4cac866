"""`linkcast api` and `linkcast api hash-secret`."""

import argparse
import getpass
import sys


def register(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    api = commands.add_parser(
        "api",
        help="serve the REST API (settings from LINKCAST_* variables)",
        description="Serve the REST API from the link-state topic; any number may run. "
        "Production mode (the default) needs LINKCAST_API_JWT_KEY and LINKCAST_API_CLIENTS_FILE.",
    )
    api.set_defaults(func=run_api)
    tools = api.add_subparsers(dest="api_command", metavar="{hash-secret}")
    hashing = tools.add_parser(
        "hash-secret",
        help="print the hash of a client secret, for the clients file",
        description="Read a client secret from stdin (or a prompt) and print its PBKDF2 hash.",
    )
    hashing.set_defaults(func=run_hash_secret)


def run_api(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app
    from api.httpserver import uvicorn_options
    from api.settings import ApiSettings

    settings = ApiSettings()
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level="info",
        access_log=False,  # api.accesslog writes one JSON line per request instead
        **uvicorn_options(settings),
    )
    return 0


def run_hash_secret(args: argparse.Namespace) -> int:
    from api.auth import hash_secret

    if sys.stdin.isatty():
        secret = getpass.getpass("client secret: ")
    else:
        secret = sys.stdin.readline().rstrip("\n")
    if len(secret) < 16:
        print(
            "linkcast api hash-secret: a client secret needs 16 characters or more", file=sys.stderr
        )
        return 2
    print(hash_secret(secret))
    return 0
