from __future__ import annotations

import sys

import click


@click.command("hash")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--sha256", is_flag=True, help="Print SHA-256 lines like sha256sum instead of BLAKE3.")
@click.pass_context
def hash_files(ctx: click.Context, files: tuple[str, ...], sha256: bool) -> None:
    """Print the BLAKE3 (or SHA-256) digest of files, in b3sum / sha256sum format.

    The output is accepted by 'b3sum -c' (or 'sha256sum -c'). Nothing is stored or recorded.

    \b
    Examples:
      custody hash clip.mp4
      custody hash --sha256 *.mp4 > SHA256SUMS && sha256sum -c SHA256SUMS
    """
    from custody.evidence.hashing import blake3_file, sha256_file

    failed = 0
    for name in files:
        try:
            digest = sha256_file(name) if sha256 else blake3_file(name)
        except OSError as exc:
            click.echo(f"custody: {name}: {exc.strerror}", err=True)
            failed += 1
            continue
        if "\n" in name or "\\" in name:
            escaped = name.replace("\\", "\\\\").replace("\n", "\\n")
            sys.stdout.write(f"\\{digest}  {escaped}\n")
        else:
            sys.stdout.write(f"{digest}  {name}\n")
    if failed:
        ctx.exit(2)


COMMANDS = [hash_files]
