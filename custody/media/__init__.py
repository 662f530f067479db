"""Media: probing recordings, packet lists, clip verification and contact sheets.

Everything here runs the stock ``ffprobe`` and ``ffmpeg`` programs (named by ``MediaTools``;
the command line takes them from ``CUSTODY_FFPROBE`` / ``CUSTODY_FFMPEG``). Nothing decodes
video except the contact sheet. A missing program raises ``MediaToolsMissing`` (exit 5, with the
install command); at ingest it never prevents preservation (``inspect_media``).

Modules, low to high:

- ``tools``: the programs, their versions, the wing's errors, shared value helpers;
- ``probe``: what ffprobe says of a file (container, streams, device, GPS);
- ``packets``: the ``custody-packets v1`` list format (render, parse);
- ``listing``: making a packet list of a file with ffprobe;
- ``inspection``: what ``custody ingest`` records of each file (``inspect_media``);
- ``clips``: is a clip a stream-copied excerpt of an original (``verify_clip``);
- ``sheets``: contact sheets (PNG grids of frames);
- ``preserved``: the operations above on preserved objects, recorded in the ledger;
- ``derivation``: ingesting a derivative of a preserved object.

Errors::

    ConfigError           5
    └── MediaToolsMissing 5  ffprobe/ffmpeg not installed or not runnable
    BadInput              2
    ├── MediaUnreadable   2  ffprobe/ffmpeg cannot read the file as audio or video
    └── PacketListInvalid 2  bytes that are not a packet list in ``custody.media.packets``' format
    IntegrityFailure      3  a recorded packet list that is missing or no longer matches its SHA-256
"""
