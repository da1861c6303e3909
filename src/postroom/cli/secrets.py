"""`postroom secrets new-key|rotate-key`: the encryption keys of stored passwords.

Rotation, step by step: generate a key with `new-key`; put it FIRST in POSTROOM_SECRET_KEY,
keeping the old key after it (`new,old`); run `rotate-key`; then drop the old key.
"""

from __future__ import annotations

import typer

from postroom.cli.common import console, get_container, translated_errors
from postroom.storage.secrets import SecretBox

app = typer.Typer(help="Encryption keys for stored passwords.", no_args_is_help=True)


@app.command("new-key")
def new_key() -> None:
    """Print a fresh key (for POSTROOM_SECRET_KEY) alone on stdout."""
    typer.echo(SecretBox.new_key())


@app.command("rotate-key")
def rotate_key() -> None:
    """Re-encrypt every stored secret with the first key of POSTROOM_SECRET_KEY (comma
    separated, newest first); the other keys only need to read the old values. All or nothing:
    one secret that no configured key can read stops the rotation and changes nothing."""
    with translated_errors():
        container = get_container()
        changed = container.accounts.reencrypt()
        console.print(
            f"re-encrypted {changed} secret(s) with key {container.secrets.current_key_id}",
            highlight=False,
        )
