"""``README.txt``: what the package holds and how to verify all of it with stock tools, from
``templates/README.txt.j2``.

Every command in it is in a block between ``---- run: <what> ----`` and ``---- end ----``,
meant to be pasted as is into a shell in the package's directory on a stock Debian 12
(``python3``, ``python3-cryptography``, ``b3sum``): a test executes each block verbatim, on a
good and on a tampered package.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

import jinja2

from custody import TOOL
from custody.package.model import ExportContext

RUN_BLOCK: Final = re.compile(r"^---- run: (?P<what>[^\n]*) ----\n(?P<commands>.*?)^---- end ----$", re.S | re.M)
"""A block of commands in README.txt: ``what`` it checks and the ``commands``, verbatim."""


@lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("custody.package", "templates"),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        keep_trailing_newline=True,
    )


def render_readme(context: ExportContext) -> str:
    """``README.txt`` of the package being written."""
    return _templates().get_template("README.txt.j2").render(
        incident=context.incident,
        created=context.created_text,
        actor=context.workspace.settings.actor,
        tool=TOOL,
        organization=context.organization,
        recipient=context.recipient,
        package_id=context.package_id,
        key=context.verifier.to_text(),
        origin=context.checkpoint.origin,
        size=context.checkpoint.size,
        previous_size=context.previous_size,
        key_source=context.organization if context.organization_given else "the sending agency",
        signed=context.signed,
        example=_example(context),
        sidecars=sum(1 for item in context.items if item.sidecar_of),
    )


def _example(context: ExportContext) -> tuple[int, str, str] | None:
    """(seq, actor, verify-time) of the signed event the README shows the command for."""
    from custody.actors.replay import ssh_time

    for seq, actor, time in context.signed:
        when = ssh_time(time)
        if when is not None:
            return seq, actor, when
    return None
