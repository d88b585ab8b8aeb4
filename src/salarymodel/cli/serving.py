"""`salarymodel serve`: the HTTP service and web page on 127.0.0.1."""

from __future__ import annotations

import json

import typer

from salarymodel.cli.application import app, console, fail
from salarymodel.config.settings import load_settings


@app.command(short_help="Serve the API and web page on 127.0.0.1.")
def serve(
    port: int | None = typer.Option(None, help="Port (default: serving.port in configs, 3000)."),
    host: str | None = typer.Option(
        None, help="Interface to bind (default: serving.host in configs, 127.0.0.1)."
    ),
    workers: int = typer.Option(2, min=1, help="Worker processes (2 suit a 2-core machine)."),
    export_only: bool = typer.Option(
        False, "--export-only", help="Export the champion to the BentoML store and exit."
    ),
) -> None:
    """Serve the champion over HTTP: API, web page at /, OpenAPI at /docs.json (BentoML)."""
    settings = load_settings()
    host = host or settings.serving.host
    port = settings.serving.port if port is None else port
    from salarymodel.serving.loading import ModelSourceError, export_champion
    from salarymodel.serving.server import serve as serve_http

    try:
        tag = export_champion(settings)
    except ModelSourceError as error:
        raise fail(f"not serving: {error}") from error
    if export_only:
        console.print(f"exported {tag} to the BentoML model store")
        return
    console.print(f"serving {tag} on http://{host}:{port} (web page at /, Ctrl-C stops)")
    serve_http(host, port, workers, tag)


# ----- retraining and the champion alias -------------------------------------------------
def reload_service(settings) -> None:
    """Ask a service running on the configured local address to load the champion."""
    import urllib.error
    import urllib.request

    from salarymodel.serving.admin_auth import read_token

    url = f"http://{settings.serving.host}:{settings.serving.port}/admin/reload"
    token = read_token(settings)  # the reload token `serve` created (serving.reload_token_*)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, method="POST", data=b"", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            body = json.loads(answer.read() or b"{}")
        console.print(
            f"service at {url} now serves v{body.get('model_version')} "
            f"(was v{body.get('previous_version')})"
        )
    except urllib.error.HTTPError as error:
        console.print(f"[yellow]{url} refused the reload:[/] {error.code} {error.reason}")
    except (urllib.error.URLError, OSError) as error:
        console.print(f"no service answering at {url} ({error}); it loads the champion on start")
