"""`postroom serve`: UI + API + an embedded worker in one process (what `make run` starts)."""

from __future__ import annotations

import typer

from postroom.cli.common import console, get_container


def serve(
    host: str = typer.Option(None, help="Interface to bind (default: POSTROOM_HOST, 127.0.0.1)."),
    port: int = typer.Option(None, min=1, max=65535, help="Port (default: POSTROOM_PORT, 8025)."),
    demo: bool = typer.Option(
        False, "--demo", help="Start a capture SMTP server and a Demo account."
    ),
    worker: bool = typer.Option(
        True, "--worker/--no-worker", help="Run the queue worker and fetch scheduler in-process."
    ),
) -> None:
    """Serve the web UI and the API; with --demo, a newcomer can send and see a mail at once."""
    import uvicorn

    from postroom.api.app import create_app
    from postroom.web.demo import ensure_admin, prepare_demo
    from postroom.worker.runner import start_in_thread

    container = get_container()
    host = host or container.settings.host
    port = port or container.settings.port
    password = ensure_admin(container)
    if password is not None:
        console.print(
            f"[bold green]Created the admin account[/] admin@postroom.local with the one-time password "
            f"[bold]{password}[/] — it is shown only now.",
            highlight=False,
        )
    handle = prepare_demo(container) if demo else None
    if handle is not None:
        console.print(
            f"Demo capture server on 127.0.0.1:{handle.port}; the 'Demo' account sends to it."
        )
    stop_worker = start_in_thread(container) if worker else None
    console.print(
        f"Postroom on [bold]http://{host}:{port}/[/] (API docs at /docs)", highlight=False
    )
    try:
        uvicorn.run(create_app(container), host=host, port=port, log_level="info")
    finally:
        if stop_worker is not None:
            stop_worker()
        if handle is not None:
            handle.stop()
