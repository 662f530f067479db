from __future__ import annotations

import sys

import click


@click.command("hash")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--sha256", is_flag=True, help="Print SHA-256 lines like sha256sum instead of BLAKE3.")
@click.option("--fifo", is_flag=True, help="Also read named pipes (FIFOs) given, to their end; refused otherwise.")
@click.option(
    "--fifo-timeout",
    type=click.IntRange(1, 86400),
    default=30,
    show_default=True,
    help="With --fifo: seconds to wait for a pipe's writer, or its next bytes, before giving up.",
)
def hash_files(files: tuple[str, ...], sha256: bool, fifo: bool, fifo_timeout: int) -> None:
    """Print the BLAKE3 (or SHA-256) digest of files, in b3sum / sha256sum format.

    The output is accepted by 'b3sum -c' (or 'sha256sum -c'). Nothing is stored or recorded.

    Only the bytes of regular files are hashed. Devices (/dev/null too), sockets, directories and
    links to them are refused (exit 2, naming the file), never read. Files whose size reads as
    0 or that cannot be mapped (/proc, /sys) are read to their end, never taken as empty. A
    named pipe is refused unless --fifo is given; a pipe that sends nothing for --fifo-timeout
    seconds is an error, so the command never waits forever.

    \b
    Examples:
      custody hash clip.mp4
      custody hash --sha256 *.mp4 > SHA256SUMS && sha256sum -c SHA256SUMS
      mkfifo p; (cat clip.mp4 > p &); custody hash --fifo p
    """
    from cli.render import echo, printable
    from custody.errors import BadInput
    from custody.evidence.hashing import SpecialFile, blake3_file, sha256_file

    timeout = float(fifo_timeout) if fifo else None
    failed = 0
    for name in files:
        try:
            digest = sha256_file(name, fifo_timeout=timeout) if sha256 else blake3_file(name, fifo_timeout=timeout)
        except SpecialFile as exc:
            echo(f"custody: {exc}", err=True)
            failed += 1
            continue
        except OSError as exc:
            echo(f"custody: {name}: {exc.strerror}", err=True)
            failed += 1
            continue
        if "\n" in name or "\\" in name or "\r" in name:
            escaped = name.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
            sys.stdout.write(f"\\{printable(digest)}  {printable(escaped)}\n")
        else:
            sys.stdout.write(f"{digest}  {printable(name)}\n")
    if failed:
        raise BadInput(f"{failed} of {len(files)} file(s) could not be hashed").already_shown()


COMMANDS = [hash_files]
